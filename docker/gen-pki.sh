#!/usr/bin/env bash
# Generates docker/pki/: a root CA, a server certificate for 127.0.0.2/localhost and a
# client certificate for alice. Private keys are generated here, never committed.
#   PKI_DIR=DIR          write there instead (docker/verify.sh uses a temporary one)
#   EXTRA_SAN=IP:a.b.c.d another subjectAltName of the server certificate
set -euo pipefail
cd "$(dirname "$0")"
PKI_DIR=${PKI_DIR:-pki}
mkdir -p "$PKI_DIR" && cd "$PKI_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj "/CN=pgdap docker CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=pgdap-server" \
  -keyout server.key -out server.csr
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
  -extfile <(printf "subjectAltName=DNS:localhost,IP:127.0.0.2%s" "${EXTRA_SAN:+,$EXTRA_SAN}") -out server.crt
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=alice" \
  -keyout alice.key -out alice.csr
openssl x509 -req -in alice.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out alice.crt
chmod 600 ./*.key
rm -f ./*.csr
echo "PKI ready in $PWD"
