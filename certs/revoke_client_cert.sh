#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Revokes a client certificate and regenerates the CRL the broker checks (crlfile), so a lost
# device is shut out. Reload the broker afterwards (SIGHUP, or restart) to pick up the CRL.
#
#   certs/revoke_client_cert.sh NAME [--out DIR]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
client=""
while (($#)); do
  case "$1" in
    --out) out_dir="$2"; shift 2 ;;
    -h|--help) sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) client="$1"; shift ;;
  esac
done
[[ -n $client ]] || die "usage: $(basename "$0") NAME [--out DIR]"
require_ca
out_dir="$(cd "$out_dir" && pwd)"
[[ -f "$out_dir/$client.pem" ]] || die "no certificate '$out_dir/$client.pem'"
openssl ca -batch -config "$out_dir/ca.cnf" -revoke "$out_dir/$client.pem" 2>"$out_dir/.openssl-ca.log" ||
  { cat "$out_dir/.openssl-ca.log" >&2; die "openssl ca -revoke failed"; }
openssl ca -batch -config "$out_dir/ca.cnf" -gencrl -out "$out_dir/crl.pem" 2>/dev/null
# Named by the certificate's own subject: NAME is a file name (e.g. "server", whose CN differs).
subject="$(openssl x509 -noout -subject -nameopt RFC2253 -in "$out_dir/$client.pem" | sed 's/^subject=//')"
echo "revoked $client.pem ($subject); CRL updated: $out_dir/crl.pem"
echo "next: reload the broker (kill -HUP <mosquitto pid>) so it reads the new CRL"
