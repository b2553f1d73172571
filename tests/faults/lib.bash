# lib.bash - shared helpers for the fault scripts (sourced, not run: tests/run.sh runs *.sh).
# Counting (ok/fail/finish), polling, agents started beside cluster members, reset-member with
# a member's flags, and the "nothing lost" checks (keys readable, data dir byte-identical).
# The cluster itself is tests/cluster.sh's.
# shellcheck shell=bash
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
AGENT=$BUILD/etcd-agent
RM=$BUILD/reset-member
# shellcheck source=../cluster.sh
source "$ROOT/tests/cluster.sh"

passed=0 failed=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/etcd-faults.XXXXXX")
AGENT_PIDS=()
EXTRA_CLEANUP=()

stop_agents() {
    local p
    for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${AGENT_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    AGENT_PIDS=()
}
faults_cleanup() {
    local c
    for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
    stop_agents
    [ -n "${CLUSTER_DIR:-}" ] && cluster_down >/dev/null 2>&1
    if [ -n "${FAULTS_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap faults_cleanup EXIT
trap 'exit 130' INT TERM

# ok/fail print the seconds since the script started, to keep an eye on its runtime.
ok() { echo "ok $1 [${SECONDS}s]"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2} [${SECONDS}s]"; failed=$((failed + 1)); }
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "$*"; fi
}
# finish: stop the agents (an ASan build reports leaks at exit), fail on any sanitizer report
# in the logs, print the closing line and exit.
finish() {
    stop_agents
    local rep
    rep=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK"/*.log "$WORK"/err 2>/dev/null)
    [ -n "$rep" ] && fail "sanitizer report" "$(grep -hE -A3 'ERROR: (Address|Leak)Sanitizer|runtime error:' $rep | head -8)"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
    exit $?
}
skip_all() { # why: the fault cannot be staged here (missing kernel feature or tool)
    echo "skip: $1"
    echo "$passed passed, $failed failed"
    exit 0
}
need_bins() {
    local b
    for b in "$@"; do [ -x "$b" ] || { fail setup "$b not built"; finish; }; done
}

until_true() { # SECONDS CMD...: poll every 0.25 s
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge "$deadline" ] && return 1
        sleep 0.25
    done
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
http_code() { curl -s --max-time 5 -o "$WORK/body" -w '%{http_code}' "$@"; }
code_is() { [ "$(http_code "$1")" = "$2" ]; }
# json EXPR: a Python expression over the last body ($WORK/body) as `d`.
json() {
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$WORK/body" "$1" 2>/dev/null
}

# start_agent VAR MEMBER PORT [flags...]: an agent beside member MEMBER, pid into VAR.
start_agent() {
    local var=$1 i=$2 port=$3
    shift 3
    "$AGENT" --endpoints "$(cluster_client-url "$i")" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --listen "127.0.0.1:$port" --probe-interval 1s --name "etcd-$i" "$@" \
        >>"$WORK/agent-$i-$port.log" 2>&1 &
    local pid=$!
    AGENT_PIDS+=("$pid")
    printf -v "$var" '%s' "$pid"
}
# Members are started as jobs of this shell; keep bash from reporting the ones killed on purpose.
quiet_jobs() { disown -a 2>/dev/null; }

# run_rm i [flags...]: reset-member with member i's flags; OUT (stdout JSON) and RC.
run_rm() {
    local i=$1 m=$CLUSTER_DIR/members/$1
    shift
    OUT=$(env -u ETCDCTL_ENDPOINTS "$RM" --name "etcd-$i" --data-dir "$(cluster_data-dir "$i")" \
        --peer-url "$(cluster_peer-url "$i")" \
        --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster")" \
        --endpoints "$(cat "$CLUSTER_DIR/endpoints")" \
        --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" --state-file "$m/state" --env-file "$m/env" \
        --timeout 5s "$@" 2>>"$WORK/reset-member.log")
    RC=$?
}
action() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("action",""))' <<<"$OUT"; }

tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }

# put_keys PREFIX N: N keys PREFIX-1..N in one transaction (one etcdctl run: each costs ~1 s
# on a loaded machine).
put_keys() {
    local k ops=""
    for k in $(seq 1 "$2"); do ops+="put $1-$k v-$1-$k"$'\n'; done
    cluster_etcdctl all txn <<<$'\n'"$ops"$'\n' 2>&1 | grep -q SUCCESS
}
# keys_on i PREFIX N: member i serves all N keys with serializable reads (its own copy).
keys_on() {
    local got
    got=$(cluster_etcdctl "$1" get --consistency=s --prefix "$2-" --keys-only 2>/dev/null | grep -c .)
    [ "$got" = "$3" ]
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
