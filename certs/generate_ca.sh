#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the certificate authority that signs the broker's and the clients' certificates.
#
#   certs/generate_ca.sh [--out DIR] [--days N] [--rsa] [--name CN] [--force]
#
# Writes DIR/ca.pem (give it to every client and the broker), DIR/ca.key (mode 0600: keep it
# offline), the CA database for issuing and revoking, and an empty CRL DIR/crl.pem.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
name="securemqtt test CA"
days=3650
while (($#)); do
  case "$1" in
    --out) out_dir="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --rsa) key_type=rsa; shift ;;
    --name) name="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
if [[ -f "$out_dir/ca.pem" && $force -ne 1 ]]; then
  die "a CA already exists in '$out_dir'; refusing to overwrite it (use --force to replace it and invalidate every certificate it issued)"
fi
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
rm -rf "$out_dir/issued" "$out_dir/index.txt"* "$out_dir/serial"* "$out_dir/crlnumber"*
mkdir -p "$out_dir/issued"
: >"$out_dir/index.txt"
openssl rand -hex 16 >"$out_dir/serial"
echo 01 >"$out_dir/crlnumber"
write_ca_config

new_key "$out_dir/ca.key"
openssl req -new -x509 -key "$out_dir/ca.key" -out "$out_dir/ca.pem" -days "$days" -sha256 \
  -subj "/CN=$name" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash"
openssl ca -batch -config "$out_dir/ca.cnf" -gencrl -out "$out_dir/crl.pem" 2>/dev/null
echo "made CA '$name' ($key_type, $days days): $out_dir/ca.pem, key $out_dir/ca.key (0600), CRL $out_dir/crl.pem"
echo "next: certs/generate_server_cert.sh --dns localhost --ip 127.0.0.1${out_dir:+ --out $out_dir}"
