#!/usr/bin/env bash
# cluster.sh - a real etcd cluster on 127.0.0.1 for tests: TLS everywhere, client-cert auth,
# free ports, everything in one temp dir that `down` removes.
#
# CLI:   eval "$(tests/cluster.sh up 3)"; tests/cluster.sh stop 1; ...; tests/cluster.sh down
# Library: source tests/cluster.sh; cluster_up 3; cluster_stop 1; ...; cluster_down
# State lives in $CLUSTER_DIR: ca.crt, node.{crt,key} (server+peer, SAN 127.0.0.1/localhost),
# client.{crt,key} (CN=root), other-ca.crt (an unrelated CA), token, and per member i
# members/i/{data/,client_port,peer_port,metrics_port,pid,etcd.log}.
# Extra etcd flags for every start: ETCD_TEST_EXTRA_FLAGS.
# The etcd build: ETCD_BIN_DIR (a directory with etcd, etcdctl and maybe etcdutl) is put first in
# PATH, for this script and every program it or its caller starts (reset-member finds its restore
# tool in PATH too); unset, PATH's etcd. ETCD_BIN_DIR itself is not passed on (etcd warns about
# unknown ETCD_* variables).

CLUSTER_WAIT_SECONDS=${CLUSTER_WAIT_SECONDS:-60}

if [ -n "${ETCD_BIN_DIR:-}" ]; then
    case $ETCD_BIN_DIR in /*) ;; *) ETCD_BIN_DIR=$PWD/$ETCD_BIN_DIR ;; esac
    if [ ! -x "$ETCD_BIN_DIR/etcd" ] || [ ! -x "$ETCD_BIN_DIR/etcdctl" ]; then
        echo "cluster.sh: ETCD_BIN_DIR=$ETCD_BIN_DIR has no etcd and etcdctl" >&2
        return 1 2>/dev/null || exit 1
    fi
    case $PATH in "$ETCD_BIN_DIR":*) ;; *) PATH=$ETCD_BIN_DIR:$PATH ;; esac
    export PATH
    export -n ETCD_BIN_DIR
fi

_cluster_die() {
    echo "cluster.sh: $*" >&2
    return 1
}

_cluster_need_dir() {
    [ -n "${CLUSTER_DIR:-}" ] && [ -f "$CLUSTER_DIR/.etcd-test-cluster" ] ||
        _cluster_die "CLUSTER_DIR is not set to a cluster made by 'up'"
}

# Print N free TCP ports on 127.0.0.1 (bound by the kernel, then released).
_cluster_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

_cluster_certs() {
    local d=$1
    (
        cd "$d" || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=etcd-test-ca -keyout ca.key -out ca.crt 2>/dev/null || exit 1
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=unrelated-ca -keyout other-ca.key -out other-ca.crt 2>/dev/null || exit 1
        cat >ext.cnf <<'EOF'
[node]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth, clientAuth
keyUsage = digitalSignature, keyEncipherment
[client]
extendedKeyUsage = clientAuth
keyUsage = digitalSignature, keyEncipherment
EOF
        local name cn
        for name in node client; do
            cn=etcd-node
            [ $name = client ] && cn=root
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$cn" \
                -keyout $name.key -out $name.csr 2>/dev/null || exit 1
            openssl x509 -req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile ext.cnf -extensions $name -out $name.crt 2>/dev/null || exit 1
        done
        rm -f ./*.csr ext.cnf
    ) || _cluster_die "certificate generation failed"
}

# Allocate ports for member i (no start). Prints its peer URL.
cluster_alloc() {
    _cluster_need_dir || return 1
    local i=$1 m="$CLUSTER_DIR/members/$1" ports
    mkdir -p "$m/data" && chmod 700 "$m/data"
    if [ ! -f "$m/client_port" ]; then
        read -r -a ports <<<"$(_cluster_free_ports 3)"
        echo "${ports[0]}" >"$m/client_port"
        echo "${ports[1]}" >"$m/peer_port"
        echo "${ports[2]}" >"$m/metrics_port"
    fi
    cluster_peer-url "$i"
}

cluster_peer-url() { echo "https://127.0.0.1:$(cat "$CLUSTER_DIR/members/$1/peer_port")"; }
cluster_client-url() { echo "https://127.0.0.1:$(cat "$CLUSTER_DIR/members/$1/client_port")"; }
cluster_metrics-url() { echo "http://127.0.0.1:$(cat "$CLUSTER_DIR/members/$1/metrics_port")"; }
cluster_data-dir() { echo "$CLUSTER_DIR/members/$1/data"; }
cluster_pid() { cat "$CLUSTER_DIR/members/$1/pid" 2>/dev/null; }

_cluster_alive() {
    local pid
    pid=$(cluster_pid "$1") || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# start i [new|existing] [INITIAL_CLUSTER]: start member i; returns once the process runs.
cluster_start() {
    _cluster_need_dir || return 1
    local i=$1 state=${2:-new} ic=${3:-} m="$CLUSTER_DIR/members/$1"
    [ -n "$ic" ] || ic=$(cat "$CLUSTER_DIR/initial_cluster")
    [ -f "$m/client_port" ] || cluster_alloc "$i" >/dev/null
    if _cluster_alive "$i"; then
        _cluster_die "member $i is already running"
        return 1
    fi
    local cp pp mp d=$CLUSTER_DIR
    cp=$(cat "$m/client_port") pp=$(cat "$m/peer_port") mp=$(cat "$m/metrics_port")
    # etcd reads ETCD_* from the environment: start it with none, flags only.
    # shellcheck disable=SC2046,SC2086
    env $(env | grep -o '^ETCD[A-Z_]*' | sed 's/^/-u /') setsid etcd --name "etcd-$i" \
        --data-dir "$m/data" \
        --listen-client-urls "https://127.0.0.1:$cp" --advertise-client-urls "https://127.0.0.1:$cp" \
        --listen-peer-urls "https://127.0.0.1:$pp" --initial-advertise-peer-urls "https://127.0.0.1:$pp" \
        --listen-metrics-urls "http://127.0.0.1:$mp" \
        --initial-cluster "$ic" --initial-cluster-state "$state" \
        --initial-cluster-token "$(cat "$d/token")" \
        --cert-file "$d/node.crt" --key-file "$d/node.key" --trusted-ca-file "$d/ca.crt" \
        --client-cert-auth \
        --peer-cert-file "$d/node.crt" --peer-key-file "$d/node.key" \
        --peer-trusted-ca-file "$d/ca.crt" --peer-client-cert-auth \
        --logger zap --log-outputs stderr \
        ${ETCD_TEST_EXTRA_FLAGS:-} >>"$m/etcd.log" 2>&1 </dev/null &
    echo $! >"$m/pid"
    # not a job of the caller's shell (when sourced): no "Killed" notices when it is stopped
    disown $! 2>/dev/null || true
    sleep 0.1
    _cluster_alive "$i" || { tail -5 "$m/etcd.log" >&2; _cluster_die "member $i exited at start"; }
}

_cluster_signal_wait() {
    local i=$1 sig=$2 pid n
    pid=$(cluster_pid "$i") || return 0
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null || { rm -f "$CLUSTER_DIR/members/$i/pid"; return 0; }
    for n in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$n" = 100 ] && kill -KILL "$pid" 2>/dev/null
        sleep 0.1
    done
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$CLUSTER_DIR/members/$i/pid"
}

cluster_stop() { _cluster_need_dir && _cluster_signal_wait "$1" TERM; }
cluster_kill() { _cluster_need_dir && _cluster_signal_wait "$1" KILL; }
cluster_pause() { _cluster_need_dir && kill -STOP "$(cluster_pid "$1")"; }
cluster_resume() { _cluster_need_dir && kill -CONT "$(cluster_pid "$1")"; }

# etcdctl i|all ARGS...
cluster_etcdctl() {
    _cluster_need_dir || return 1
    local who=$1 eps
    shift
    if [ "$who" = all ]; then
        eps=$(cat "$CLUSTER_DIR/endpoints")
    else
        eps=$(cluster_client-url "$who")
    fi
    # shellcheck disable=SC2046
    env $(env | grep -o '^ETCDCTL[A-Z_]*' | sed 's/^/-u /') ETCDCTL_API=3 etcdctl \
        --endpoints "$eps" --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" --dial-timeout 3s --command-timeout 10s "$@"
}

# wait-healthy i...: until each member answers a health check (a quorum read through it).
cluster_wait-healthy() {
    _cluster_need_dir || return 1
    local i deadline=$((SECONDS + CLUSTER_WAIT_SECONDS))
    for i in "$@"; do
        until cluster_etcdctl "$i" endpoint health >/dev/null 2>&1; do
            if [ $SECONDS -ge $deadline ]; then
                tail -5 "$CLUSTER_DIR/members/$i/etcd.log" >&2
                _cluster_die "member $i not healthy after ${CLUSTER_WAIT_SECONDS}s"
                return 1
            fi
            sleep 0.2
        done
    done
}

# member-id i: the member's ID in hex (etcdctl's form), from the member list by name.
cluster_member-id() {
    local i=$1 who
    who=$(_cluster_any_running) || return 1
    cluster_etcdctl "$who" member list -w json | python3 -c '
import json, sys
name = sys.argv[1]
for m in json.load(sys.stdin).get("members", []):
    if m.get("name") == name:
        print("%x" % m["ID"]); break
else:
    sys.exit(1)' "etcd-$i"
}

_cluster_any_running() {
    local m
    for m in "$CLUSTER_DIR"/members/*/; do
        m=$(basename "$m")
        _cluster_alive "$m" && { echo "$m"; return 0; }
    done
    return 1
}

_cluster_exports() {
    cat <<EOF
export CLUSTER_DIR='$CLUSTER_DIR'
export ETCD_TEST_ENDPOINTS='$(cat "$CLUSTER_DIR/endpoints")'
export ETCD_TEST_CACERT='$CLUSTER_DIR/ca.crt'
export ETCD_TEST_CERT='$CLUSTER_DIR/client.crt'
export ETCD_TEST_KEY='$CLUSTER_DIR/client.key'
export ETCD_TEST_OTHER_CACERT='$CLUSTER_DIR/other-ca.crt'
export ETCD_TEST_INITIAL_CLUSTER='$(cat "$CLUSTER_DIR/initial_cluster")'
export ETCD_TEST_TOKEN='$(cat "$CLUSTER_DIR/token")'
export ETCD_TEST_N='$(cat "$CLUSTER_DIR/n")'
EOF
}

# up N: make the dir and certs, start N members, wait until all are healthy.
cluster_up() {
    local n=${1:-3} i ic="" eps=""
    CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/etcd-cluster.XXXXXX") || return 1
    export CLUSTER_DIR
    touch "$CLUSTER_DIR/.etcd-test-cluster"
    echo "$n" >"$CLUSTER_DIR/n"
    echo "etcd-test-$$-$RANDOM" >"$CLUSTER_DIR/token"
    _cluster_certs "$CLUSTER_DIR" || return 1
    for i in $(seq 0 $((n - 1))); do
        ic+="${ic:+,}etcd-$i=$(cluster_alloc "$i")"
        eps+="${eps:+,}$(cluster_client-url "$i")"
    done
    echo "$ic" >"$CLUSTER_DIR/initial_cluster"
    echo "$eps" >"$CLUSTER_DIR/endpoints"
    for i in $(seq 0 $((n - 1))); do
        cluster_start "$i" new || return 1
    done
    # shellcheck disable=SC2046
    cluster_wait-healthy $(seq 0 $((n - 1))) || return 1
    eval "$(_cluster_exports)"
}

cluster_env() { _cluster_need_dir && _cluster_exports; }

# down: stop every member this cluster started and remove the dir.
cluster_down() {
    [ -n "${CLUSTER_DIR:-}" ] && [ -f "$CLUSTER_DIR/.etcd-test-cluster" ] || return 0
    local p pid
    for p in "$CLUSTER_DIR"/members/*/pid; do
        [ -f "$p" ] || continue
        pid=$(cat "$p")
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done
    for p in "$CLUSTER_DIR"/members/*/pid; do
        [ -f "$p" ] || continue
        pid=$(cat "$p")
        while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    done
    rm -rf "$CLUSTER_DIR"
    unset CLUSTER_DIR
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    cmd=${1:-}
    [ -n "$cmd" ] || { echo "usage: $0 up N | down | env | start|stop|kill|pause|resume|alloc|peer-url|client-url|metrics-url|data-dir|member-id|wait-healthy I... | etcdctl I|all ARGS" >&2; exit 2; }
    shift
    case $cmd in
    up)
        if cluster_up "$@" >&2; then
            _cluster_exports
        else
            cluster_down
            exit 1
        fi
        ;;
    down | env | start | stop | kill | pause | resume | alloc | peer-url | client-url | metrics-url | \
        data-dir | member-id | wait-healthy | etcdctl | pid)
        "cluster_$cmd" "$@"
        ;;
    *)
        echo "cluster.sh: unknown command $cmd" >&2
        exit 2
        ;;
    esac
fi
