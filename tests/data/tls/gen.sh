#!/usr/bin/env bash
# Regenerates the test certificates (openssl). Nothing outside tests uses them; the keys are
# test keys, committed for the tests only. Run from this folder.
set -euo pipefail
days=36500
ca() { # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days "$days" \
    -subj "$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # name ca subject san [days]
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
    -days "${5:-$days}" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
# A leaf whose validity ended long ago (2020-01-01 .. 2020-01-02): `openssl x509` of this
# OpenSSL (3.0) cannot back-date, `openssl ca` can.
expired_leaf() { # name ca subject san
  local dir; dir=$(mktemp -d)
  touch "$dir/index.txt"
  printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\n' \
    "$dir" "$dir" "$dir" > "$dir/ca.cnf"
  printf 'default_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\n' >> "$dir/ca.cnf"
  printf '[x]\nsubjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" >> "$dir/ca.cnf"
  echo 01 > "$dir/serial"
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$dir/req.csr" -subj "$3" 2>/dev/null
  openssl ca -batch -config "$dir/ca.cnf" -extensions x -cert "$2.pem" -keyfile "$2.key" \
    -startdate 20200101000000Z -enddate 20200102000000Z -in "$dir/req.csr" -out "$1.pem" -notext 2>/dev/null
  rm -rf "$dir"
}
# The whole set, or just the files added later (`./gen.sh extra`), which keeps the first ones.
if [ "${1:-all}" = all ]; then
  ca ca "/CN=abs test CA"
  ca other-ca "/CN=abs other test CA"
  leaf server ca "/CN=localhost" "DNS:localhost,DNS:aerospike-test,IP:127.0.0.1"
  leaf client ca "/CN=abs-client" "DNS:abs-client"
fi
# A server certificate that expired (a cluster with an outdated certificate).
expired_leaf expired-server ca "/CN=localhost" "DNS:localhost,IP:127.0.0.1"
# A client certificate from a CA the node does not trust (mutual TLS refused).
leaf other-client other-ca "/CN=abs-client" "DNS:abs-client"
# The client key as encrypted PKCS#8 (PBES2: PBKDF2-SHA256, AES-256-CBC), for `key-file-password`.
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -in client.key -out client-encrypted.key \
  -passout pass:test-key-password
rm -f ./*.srl
# API callers known by their certificate (service.http.auth client-cert-sha256); api-other is
# signed by the other CA, so the service's handshake refuses it.
leaf api-admin ca "/CN=backup-operator" "DNS:backup-operator"
leaf api-reader ca "/CN=backup-dashboards" "DNS:backup-dashboards"
leaf api-other other-ca "/CN=backup-operator" "DNS:backup-operator"
rm -f ./*.srl
# Legacy OpenSSL-encrypted keys (Proc-Type/DEK-Info), as older tools and ABS's own tests write
# them: the client key three ways, the server key (service.https), and an EC key.
for c in aes256 aes128 des3; do
  openssl rsa -in client.key "-$c" -traditional -passout pass:test-key-password \
    -out "client-legacy-$c.key" 2>/dev/null
done
openssl rsa -in server.key -aes256 -traditional -passout pass:server-key-password \
  -out server-legacy-aes256.key 2>/dev/null
openssl ecparam -genkey -name prime256v1 -noout 2>/dev/null |
  openssl ec -aes256 -passout pass:test-key-password -out ec-legacy-aes256.key 2>/dev/null
