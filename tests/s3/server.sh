#!/usr/bin/env bash
# server.sh - an S3 server for the tests: s3rver (npm, pinned in package-lock.json) behind
# proxy.py, which verifies every SigV4 signature (s3rver does not) and injects faults. Free
# ports, a temp dir, nothing outside it; `stop` kills exactly what `start` started.
#   eval "$(tests/s3/server.sh start)"   # prints the env: AWS_*, S3_TEST_DIR, S3_TEST_BUCKET,
#                                         # S3_TEST_PROXY (control URL for faults)
#   tests/s3/server.sh stop [DIR]         # DIR defaults to $S3_TEST_DIR
# S3_TEST_TLS=1: the proxy speaks TLS with a certificate for 127.0.0.1 from a fresh test CA;
# AWS_CA_BUNDLE names that CA and the URLs are https (control requests need --cacert too).
# S3_TEST_SESSION_TOKEN=T: every request must carry T (x-amz-security-token, signed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

# shellcheck source=../lib/server.bash
source "$here/../lib/server.bash"

stop() { server_stop "${1:-${S3_TEST_DIR:-}}" proxy.pid s3rver.pid; }

start() {
    command -v node >/dev/null || { echo "server.sh: node missing (make deps)" >&2; exit 77; }
    $PY -c 'import botocore' 2>/dev/null || { echo "server.sh: python3-botocore missing (make deps)" >&2; exit 77; }
    if [ ! -f "$here/node_modules/s3rver/bin/s3rver.js" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --silent >&2) ||
            { echo "server.sh: npm ci failed" >&2; exit 1; }
    fi
    local dir up port bucket=${S3_TEST_BUCKET:-test-bucket}
    dir=$(mktemp -d /tmp/s3test.XXXXXX)
    trap 'stop "$dir"' ERR
    mkdir "$dir/data"
    up=$(free_port)
    port=$(free_port)
    local access=AKIAETCDRECOVERYTEST secret
    secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
    # DES (its continuation tokens) needs the legacy provider under OpenSSL 3
    setsid node --openssl-legacy-provider "$here/node_modules/s3rver/bin/s3rver.js" -d "$dir/data" -a 127.0.0.1 -p "$up" \
        --silent --no-vhost-buckets --configure-bucket "$bucket" >"$dir/s3rver.log" 2>&1 &
    echo $! >"$dir/s3rver.pid"
    local scheme=http tlsenv=()
    if [ -n "${S3_TEST_TLS:-}" ]; then
        scheme=https
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=s3 test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
                -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null &&
            printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
                -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null ||
            { echo "server.sh: cannot make the test certificates" >&2; stop "$dir"; exit 1; }
        tlsenv=(S3_PROXY_CERT="$dir/server.crt" S3_PROXY_KEY="$dir/server.key")
    fi
    env "${tlsenv[@]}" setsid $PY "$here/proxy.py" "$port" "$up" "$access" "$secret" us-east-1 \
        ${S3_TEST_SESSION_TOKEN:+"$S3_TEST_SESSION_TOKEN"} >"$dir/proxy.log" 2>&1 &
    echo $! >"$dir/proxy.pid"
    wait_port "$up" "$dir/s3rver.pid" 10 || { echo "server.sh: s3rver did not start:" >&2; cat "$dir/s3rver.log" >&2; stop "$dir"; exit 1; }
    wait_port "$port" "$dir/proxy.pid" 10 || { echo "server.sh: proxy did not start:" >&2; cat "$dir/proxy.log" >&2; stop "$dir"; exit 1; }
    trap - ERR
    cat <<EOT
export S3_TEST_DIR=$dir
export S3_TEST_BUCKET=$bucket
export S3_TEST_PROXY=$scheme://127.0.0.1:$port
export AWS_ENDPOINT_URL=$scheme://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
EOT
    [ -z "${S3_TEST_TLS:-}" ] || echo "export AWS_CA_BUNDLE=$dir/ca.crt"
    [ -z "${S3_TEST_SESSION_TOKEN:-}" ] || echo "export AWS_SESSION_TOKEN=$S3_TEST_SESSION_TOKEN"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
