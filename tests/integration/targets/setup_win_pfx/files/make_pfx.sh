#!/usr/bin/env bash
# Test fixtures for the Windows targets, made on the controller with the openssl CLI:
# a root and an issuing CA, RSA and ECDSA client certificates, a code-signing certificate,
# each as a legacy (3DES, SHA-1 MAC) PKCS#12 that every Windows build imports, plus a
# modern (AES-256) copy of the client certificate and a second client certificate that
# supersedes the first. Thumbprints go to thumbprints.txt (openssl's SHA-1, upper case).
set -euo pipefail
out=$1
pass=$2
mkdir -p "$out"
cd "$out"

ext() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$name.ext"
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 -sha256 \
    -subj "/O=snowrpa test/CN=snowrpa test root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

ext ca "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" "subjectKeyIdentifier=hash"
ext client "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth"
ext ecclient "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
ext codesign "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=codeSigning"

openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -subj "/O=snowrpa test/CN=snowrpa test issuing" \
    2>/dev/null
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -sha256 -extfile ca.ext \
    -out inter.pem 2>/dev/null

issue() {
    local name=$1 keyspec=$2 cn=$3 extfile=$4
    if [ "$keyspec" = ec ]; then
        openssl ecparam -name prime256v1 -genkey -noout -out "$name.key"
    else
        openssl genrsa -out "$name.key" 2048 2>/dev/null
    fi
    openssl req -new -key "$name.key" -out "$name.csr" -subj "/O=snowrpa test/CN=$cn"
    openssl x509 -req -in "$name.csr" -CA inter.pem -CAkey inter.key -CAcreateserial -days 20 -sha256 \
        -extfile "$extfile.ext" -out "$name.pem" 2>/dev/null
    cat inter.pem root.pem >"$name.chain.pem"
    openssl pkcs12 -export -in "$name.pem" -inkey "$name.key" -certfile "$name.chain.pem" -name "snowrpa test $name" \
        -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 -passout "pass:$pass" -out "$name.p12"
}

issue client rsa snowrpa-test-robot client
issue client2 rsa snowrpa-test-robot client
issue ecclient ec snowrpa-test-robot-ec ecclient
issue codesign rsa snowrpa-test-codesign codesign
openssl pkcs12 -export -in client.pem -inkey client.key -certfile client.chain.pem -name "snowrpa test client" \
    -passout "pass:$pass" -out client-aes.p12

: >thumbprints.txt
for name in root inter client client2 ecclient codesign; do
    tp=$(openssl x509 -in "$name.pem" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d :)
    echo "$name: $tp" >>thumbprints.txt
done
