#!/usr/bin/env bash
# server.sh - Azure Blob for the tests: Azurite (npm, pinned in package-lock.json; it verifies
# Shared Key and SAS itself) on free loopback ports in a temp dir, behind faultproxy.py (faults
# on request), with a test account holding a fresh random key and one container. `stop` kills
# exactly what `start` started and removes the dir.
#   eval "$(tests/azure/server.sh start)"  # prints the env: AZURE_STORAGE_ACCOUNT/KEY/
#                                           # BLOB_ENDPOINT, AZURE_TEST_DIR, AZURE_TEST_CONTAINER,
#                                           # AZURE_TEST_SAS (container SAS), AZURE_TEST_PROXY
#   tests/azure/server.sh stop [DIR]        # DIR defaults to $AZURE_TEST_DIR
# Exits 77 (skip) when node or Debian's python3-azure-storage is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

# shellcheck source=../lib/server.bash
source "$here/../lib/server.bash"

stop() { server_stop "${1:-${AZURE_TEST_DIR:-}}" proxy.pid azurite.pid; }

start() {
    command -v node >/dev/null || { echo "server.sh: node missing (make deps)" >&2; exit 77; }
    $PY -c 'import azure.storage.blob' 2>/dev/null ||
        { echo "server.sh: python3-azure-storage missing (make deps)" >&2; exit 77; }
    if [ ! -f "$here/node_modules/azurite/dist/src/blob/main.js" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --silent >&2) ||
            { echo "server.sh: npm ci failed" >&2; exit 1; }
    fi
    local dir up port account=etcdtest container=${AZURE_TEST_CONTAINER:-backups} key
    dir=$(mktemp -d /tmp/azuretest.XXXXXX)
    trap 'stop "$dir"' ERR
    mkdir "$dir/data"
    up=$(free_port)
    port=$(free_port)
    key=$(head -c 64 /dev/urandom | base64 -w0)
    AZURITE_ACCOUNTS="$account:$key" setsid node "$here/node_modules/azurite/dist/src/blob/main.js" \
        --blobHost 127.0.0.1 --blobPort "$up" --location "$dir/data" --silent --disableProductStyleUrl \
        >"$dir/azurite.log" 2>&1 &
    echo $! >"$dir/azurite.pid"
    setsid $PY "$here/faultproxy.py" "$port" "$up" >"$dir/proxy.log" 2>&1 &
    echo $! >"$dir/proxy.pid"
    wait_port "$up" "$dir/azurite.pid" 20 || { echo "server.sh: azurite did not start:" >&2; cat "$dir/azurite.log" >&2; stop "$dir"; exit 1; }
    wait_port "$port" "$dir/proxy.pid" 20 || { echo "server.sh: proxy did not start:" >&2; cat "$dir/proxy.log" >&2; stop "$dir"; exit 1; }
    # the container, and a container SAS (read/add/create/write/delete/list, 1 day), with the SDK
    local sas
    sas=$($PY - "$account" "$key" "http://127.0.0.1:$up/$account" "$container" <<'PYEOF'
import datetime, sys
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
account, key, url, container = sys.argv[1:5]
BlobServiceClient(url, credential={"account_name": account, "account_key": key}) \
    .create_container(container)
print(generate_container_sas(account, container, account_key=key,
      permission=ContainerSasPermissions(read=True, add=True, create=True, write=True,
                                         delete=True, list=True),
      expiry=datetime.datetime.utcnow() + datetime.timedelta(days=1)))
PYEOF
) || { echo "server.sh: cannot create the container" >&2; stop "$dir"; exit 1; }
    trap - ERR
    cat <<EOT
export AZURE_TEST_DIR=$dir
export AZURE_TEST_CONTAINER=$container
export AZURE_TEST_PROXY=http://127.0.0.1:$port
export AZURE_TEST_SAS='$sas'
export AZURE_STORAGE_ACCOUNT=$account
export AZURE_STORAGE_KEY=$key
export AZURE_STORAGE_BLOB_ENDPOINT=http://127.0.0.1:$port/$account
EOT
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
