#!/usr/bin/env bash
# Regenerates the test certificates (openssl). Nothing outside tests uses them; the keys are
# test keys. Run from this folder.
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
ca ca "/CN=abs test CA"
ca other-ca "/CN=abs other test CA"
leaf server ca "/CN=localhost" "DNS:localhost,DNS:aerospike-test,IP:127.0.0.1"
leaf client ca "/CN=abs-client" "DNS:abs-client"
rm -f ./*.srl
# API callers known by their certificate (service.http.auth client-cert-sha256); api-other is
# signed by the other CA, so the service's handshake refuses it.
leaf api-admin ca "/CN=backup-operator" "DNS:backup-operator"
leaf api-reader ca "/CN=backup-dashboards" "DNS:backup-dashboards"
leaf api-other other-ca "/CN=backup-operator" "DNS:backup-operator"
rm -f ./*.srl
