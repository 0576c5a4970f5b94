#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the broker's certificate, signed by the CA, with the names clients will check.
#
#   certs/generate_server_cert.sh [--dns NAME]... [--ip ADDR]... [--name CN] [--out DIR]
#                                 [--days N] [--rsa]
#
# Defaults: --dns localhost --ip 127.0.0.1 --ip ::1. Writes DIR/server.pem and DIR/server.key.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
name=""
dns=()
ips=()
while (($#)); do
  case "$1" in
    --dns) dns+=("$2"); shift 2 ;;
    --ip) ips+=("$2"); shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --rsa) key_type=rsa; shift ;;
    -h|--help) sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
if ((${#dns[@]} == 0 && ${#ips[@]} == 0)); then dns=(localhost); ips=(127.0.0.1 ::1); fi
[[ -n $name ]] || name="${dns[0]:-${ips[0]}}"
require_ca
out_dir="$(cd "$out_dir" && pwd)"

san=""
for d in "${dns[@]}"; do san+="${san:+,}DNS:$d"; done
for i in "${ips[@]}"; do san+="${san:+,}IP:$i"; done
ext="$out_dir/.server.ext"
cat >"$ext" <<EXT
[ server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
new_key "$out_dir/server.key"
openssl req -new -key "$out_dir/server.key" -subj "/CN=$name" -out "$out_dir/server.csr"
sign_csr "$out_dir/server.csr" "$out_dir/server.pem" "$ext" server
rm -f "$out_dir/server.csr" "$ext"
echo "made server certificate CN=$name for $san: $out_dir/server.pem, key $out_dir/server.key (0600)"
echo "next: certs/generate_client_cert.sh device-1${out_dir:+ --out $out_dir}"
