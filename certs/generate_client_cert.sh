#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes a client certificate whose CN is NAME (the broker uses it as the username for ACLs).
#
#   certs/generate_client_cert.sh NAME [--out DIR] [--days N] [--rsa] [--der]
#                                 [--passphrase-file FILE] [--not-before T --not-after T]
#
# Writes DIR/NAME.pem and DIR/NAME.key (0600); --der adds NAME.der and NAME.key.der for devices
# such as MicroPython boards; --passphrase-file encrypts the key (AES-256) with the file's first
# line; --not-before/--not-after (YYYYMMDDHHMMSSZ) set the validity explicitly.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
client=""
der=0
passfile=""
start=""
end=""
while (($#)); do
  case "$1" in
    --out) out_dir="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --rsa) key_type=rsa; shift ;;
    --der) der=1; shift ;;
    --passphrase-file) passfile="$2"; shift 2 ;;
    --not-before) start="$2"; shift 2 ;;
    --not-after) end="$2"; shift 2 ;;
    -h|--help) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [[ -z $client ]] || die "one NAME only"; client="$1"; shift ;;
  esac
done
[[ -n $client ]] || die "usage: $(basename "$0") NAME [options] (see --help)"
[[ $client =~ ^[A-Za-z0-9._-]+$ ]] || die "NAME may contain letters, digits, '.', '_' and '-' only"
[[ -z $start && -z $end || -n $start && -n $end ]] || die "--not-before and --not-after go together"
require_ca
out_dir="$(cd "$out_dir" && pwd)"

ext="$out_dir/.client.ext"
cat >"$ext" <<EXT
[ client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
key="$out_dir/$client.key"
new_key "$key"
openssl req -new -key "$key" -subj "/CN=$client" -out "$out_dir/$client.csr"
sign_csr "$out_dir/$client.csr" "$out_dir/$client.pem" "$ext" client "$start" "$end"
rm -f "$out_dir/$client.csr" "$ext"
made="$out_dir/$client.pem, key $key (0600)"
if ((der)); then
  openssl x509 -in "$out_dir/$client.pem" -outform DER -out "$out_dir/$client.der"
  (umask 077; openssl pkey -in "$key" -outform DER -out "$out_dir/$client.key.der")
  made+=", DER $out_dir/$client.der and $out_dir/$client.key.der"
fi
if [[ -n $passfile ]]; then
  (umask 077; openssl pkey -in "$key" -aes256 -passout "file:$passfile" -out "$key.enc")
  mv "$key.enc" "$key"
  made+=" (encrypted)"
fi
echo "made client certificate CN=$client: $made"
echo "next: use it with --cert $out_dir/$client.pem --key $key --cafile $out_dir/ca.pem"
