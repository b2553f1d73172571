# lib.bash - the shell library of the e2e and fault scripts (sourced: `source tests/lib/lib.bash`).
# Counting (ok/fail/check/skip/finish: closing line "N passed, N failed, N skipped"; exit 0,
# 1, or 77 when everything was skipped), one cleanup trap, a work dir, polling, free ports,
# HTTP probes, agents beside cluster members, reset-member with a member's flags, and the
# "nothing lost" helpers. The cluster itself is tests/cluster.sh's; tests/run.sh does the tally.
#
# Sets: ROOT (the checkout; also the cwd), BUILD (absolute), AGENT, RM (the test-hook build of
# reset-member, $BUILD/e2e: `make tests` builds it), RM_RELEASE, WORK (a temp dir, removed at
# exit unless E2E_KEEP_LOGS or FAULTS_KEEP is set), passed/failed/skipped.
# A skip is counted, never a pass; with CI=true (CI has root, chroot, FUSE and io_uring) a skip
# is a failure.
# shellcheck shell=bash
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
AGENT=$BUILD/etcd-agent
RM_RELEASE=$BUILD/reset-member
RM=$BUILD/e2e/reset-member # compiled with -DRESET_MEMBER_TEST_HOOKS (RESET_MEMBER_CRASH_AT)
# shellcheck source=../cluster.sh
source "$ROOT/tests/cluster.sh"

passed=0 failed=0 skipped=0
OUT="" RC=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/etcd-$(basename "$0" .sh).XXXXXX")
AGENT_PIDS=()
EXTRA_CLEANUP=() # shell commands, eval'd at exit in order (they see the variables of that time)

at_exit() { EXTRA_CLEANUP+=("$1"); }
stop_agents() {
    local p
    for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${AGENT_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    AGENT_PIDS=()
}
lib_cleanup() {
    local c
    for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
    stop_agents
    [ -n "${CLUSTER_DIR:-}" ] && cluster_down >/dev/null 2>&1
    if [ -n "${E2E_KEEP_LOGS:-}${FAULTS_KEEP:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ok/fail/skip print the seconds since the script started, to keep an eye on its runtime.
ok() { echo "ok $1 [${SECONDS}s]"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2} [${SECONDS}s]"; failed=$((failed + 1)); }
# skip NAME WHY: a check that cannot run here (missing tool, privilege, kernel feature).
skip() {
    if [ "${CI:-}" = true ]; then
        fail "$1" "skipped, and CI=true does not allow skips: $2"
    else
        echo "SKIP $1: $2"
        skipped=$((skipped + 1))
    fi
}
# check NAME CMD...: ok if CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else fail "$name" "$*"; fi
}
# finish: stop the agents (an ASan build reports leaks at exit), fail on any sanitizer report
# in $WORK's logs, print the closing line and exit: 1 on a failure or when nothing ran, 77 when
# everything was skipped, else 0.
SANITIZER_RE='ERROR: (Address|Leak)Sanitizer|(\.[ch]:[0-9]+:[0-9]+|<unknown>): runtime error:'
finish() {
    stop_agents
    local rep
    rep=$(grep -lE "$SANITIZER_RE" "$WORK"/*.log "$WORK"/err 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$rep" ] && fail "sanitizer report" "$(grep -hE -A3 "$SANITIZER_RE" $rep | head -8)"
    [ $((passed + failed + skipped)) = 0 ] && fail "ran no test"
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" = 0 ] || exit 1
    [ "$passed" = 0 ] && exit 77
    exit 0
}
skip_all() { # WHY: nothing can run here (missing privilege, kernel feature or tool)
    skip "$(basename "$0" .sh)" "$1"
    finish
}
# sub_result NAME OUTPUT: add a sub-checker's result (its ok/FAIL/SKIP lines and closing line
# "N passed, N failed") to ours; no closing line is a failure NAME.
sub_result() {
    local name=$1 out=$2 line
    grep -E '^(ok|FAIL) ' <<<"$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
    if [ -z "$line" ]; then
        fail "$name" "no result line: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
        return
    fi
    passed=$((passed + $(awk '{print $1}' <<<"$line")))
    failed=$((failed + $(awk '{print $3}' <<<"$line")))
    while read -r line; do skip "${line%%:*}" "${line#*: }"; done < <(sed -n 's/^SKIP //p' <<<"$out")
}
need_bins() {
    local b
    for b in "$@"; do [ -x "$b" ] || { fail setup "$b not built (make tests)"; finish; }; done
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
# http_code URL [curl args...]: body into $WORK/body, headers into $WORK/headers; prints the code.
http_code() {
    local url=$1
    shift
    curl -s --max-time 10 -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@" "$url"
}
code_is() { [ "$(http_code "$1")" = "$2" ]; }
header() { grep -i "^$1:" "$WORK/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# json EXPR: a Python expression over the last body ($WORK/body) as `d`.
json() {
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$WORK/body" "$1" 2>/dev/null
}

# start_agent VAR MEMBER PORT [flags...]: an agent beside member MEMBER, pid into VAR; its log
# is $WORK/agent-MEMBER-PORT.log. AGENT_PROBE_INTERVAL (default 1s): its --probe-interval (a
# flag may be given once).
start_agent() {
    local var=$1 i=$2 port=$3
    shift 3
    "$AGENT" --endpoints "$(cluster_client-url "$i")" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --listen "127.0.0.1:$port" --probe-interval "${AGENT_PROBE_INTERVAL:-1s}" --name "etcd-$i" "$@" \
        >>"$WORK/agent-$i-$port.log" 2>&1 &
    local pid=$!
    AGENT_PIDS+=("$pid")
    printf -v "$var" '%s' "$pid"
}
# start_tls_agent VAR MEMBER TLSPORT PLAINPORT [flags...]: start_agent with the mTLS listener too
# (the cluster's node certificate, clients of its CA: /backups and /snapshot need one) and
# $WORK as its spool dir.
start_tls_agent() {
    local var=$1 i=$2 tp=$3 pp=$4
    shift 4
    start_agent "$var" "$i" "$pp" --tls-listen "127.0.0.1:$tp" --tls-cert "$CLUSTER_DIR/node.crt" \
        --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$CLUSTER_DIR/ca.crt" \
        --spool-dir "$WORK" "$@"
}
# s3_server_up: tests/s3/server.sh's S3 (its env in S3ENV and evaluated; stopped at exit), or
# skip everything.
s3_server_up() {
    S3ENV=$(tests/s3/server.sh start) || skip_all "S3 test server did not start"
    eval "$S3ENV"
    # shellcheck disable=SC2034 # S3DIR: read by the at_exit command below (eval'd at exit)
    S3DIR=$S3_TEST_DIR
    at_exit 'tests/s3/server.sh stop "$S3DIR"'
}
# rm_restore DIR URL [flags...]: the release reset-member restoring URL into a scratch one-member
# cluster in DIR (nothing runs there: a restore needs no live cluster); OUT, RC; stderr in DIR.log.
rm_restore() {
    local d=$1 url=$2 sp sc
    shift 2
    read -r sp sc <<<"$(_cluster_free_ports 2)"
    mkdir -p "$d"
    OUT=$("$RM_RELEASE" --name etcd-x --data-dir "$d/data" --peer-url "https://127.0.0.1:$sp" \
        --initial-cluster "etcd-x=https://127.0.0.1:$sp" --endpoints "https://127.0.0.1:$sc" \
        --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --state-file "$d/state" --env-file "$d/env" --timeout 2s --restore-from "$url" "$@" 2>"$d.log")
    RC=$?
}
# first_agent PATH EXPR: the index i of the first agent in A[] (base URLs) whose JSON answer to
# GET PATH, as `d`, makes the Python expression EXPR true; fails when none does.
first_agent() {
    local i
    for i in "${!A[@]}"; do
        curl -s "${A[$i]}$1" | python3 -c 'import json,sys; d = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" 2>/dev/null && {
            echo "$i"
            return 0
        }
    done
    return 1
}
# age_identity: a fresh age identity in $WORK/id.txt, its recipient in RCPT.
age_identity() {
    age-keygen -o "$WORK/id.txt" 2>/dev/null
    # shellcheck disable=SC2034 # RCPT: the caller's
    RCPT=$(age-keygen -y "$WORK/id.txt")
}
# Members are started as jobs of this shell; keep bash from reporting the ones killed on purpose.
quiet_jobs() { disown -a 2>/dev/null; }

# run_rm i [flags...]: $RM with member i's flags; OUT (stdout JSON) and RC. Its stderr goes to
# $WORK/rm-i.log (this run only) and, with a line "reset-member etcd-i FLAGS: rc=RC OUT", to
# $WORK/reset-member.log. RUN_RM_TOKEN=1 adds the cluster's --initial-cluster-token;
# RUN_RM_ENV=(VAR=value ...) is added to its environment.
RUN_RM_TOKEN="" RUN_RM_ENV=()
run_rm() {
    local i=$1 m=$CLUSTER_DIR/members/$1 token=()
    shift
    [ -n "$RUN_RM_TOKEN" ] && token=(--initial-cluster-token "$(cat "$CLUSTER_DIR/token")")
    OUT=$(env -u ETCDCTL_ENDPOINTS "${RUN_RM_ENV[@]}" "$RM" --name "etcd-$i" \
        --data-dir "$(cluster_data-dir "$i")" --peer-url "$(cluster_peer-url "$i")" \
        --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster")" "${token[@]}" \
        --endpoints "$(cat "$CLUSTER_DIR/endpoints")" \
        --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" --state-file "$m/state" --env-file "$m/env" \
        --timeout 5s "$@" 2>"$WORK/rm-$i.log")
    RC=$?
    cat "$WORK/rm-$i.log" >>"$WORK/reset-member.log"
    echo "reset-member etcd-$i $*: rc=$RC $OUT" >>"$WORK/reset-member.log"
}
# jget FIELD <<<json: one top-level field of a JSON object.
jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get(sys.argv[1], ""))' "$1"; }
action() { jget action <<<"$OUT"; }
# die WHY: a scenario step failed; WHY says why (run_scenario prints it).
WHY=""
die() { WHY="$*"; return 1; }
# expect_action i action [rc]: the last run's action and exit code (else die).
expect_action() {
    local want=$2 rc=${3:-0} got
    got=$(jget action <<<"$OUT")
    [ "$got" = "$want" ] || die "etcd-$1: action '$got' (want $want), rc $RC: $OUT" || return 1
    [ "$RC" = "$rc" ] || die "etcd-$1: rc $RC (want $rc): $OUT" || return 1
}
mdir() { echo "$CLUSTER_DIR/members/$1"; }
# start_from_state i: start etcd-i with the state and initial cluster reset-member wrote.
start_from_state() {
    local i=$1 m state ic
    m=$(mdir "$i")
    state=$(cat "$m/state") || return 1
    ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER=//p' "$m/env")
    [ -n "$ic" ] || ic=$(cat "$CLUSTER_DIR/initial_cluster")
    cluster_start "$i" "$state" "$ic" || die "etcd-$i did not start ($state)"
}

# run_scenario NAME: s_NAME as one check "NAME (Ns)"; on failure WHY says why, the last
# reset-member runs are shown and scenario_failed (when the script defines it) runs, e.g. to
# bring the cluster back for the next scenario.
run_scenario() {
    local name=$1 start=$SECONDS
    WHY=""
    if "s_$name"; then
        ok "$name ($((SECONDS - start))s)"
    else
        fail "$name" "${WHY:-failed} ($((SECONDS - start))s)"
        echo "    last reset-member runs:"
        tail -n 4 "$WORK/reset-member.log" 2>/dev/null | grep -v '^{' | cut -c1-400 | sed 's/^/    | /'
        if declare -F scenario_failed >/dev/null; then scenario_failed; fi
    fi
}

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
# restore_fields LOG KEY...: the "restore" object of reset-member's decision line (the last JSON
# line of LOG, its stderr, that has one) as KEY=value lines for eval: a list is its items joined
# by spaces ("none" when empty), a missing key empty.
restore_fields() {
    python3 -c '
import json, shlex, sys
r = {}
for line in open(sys.argv[1]):
    try:
        r = json.loads(line).get("restore", r)
    except (ValueError, AttributeError):
        pass
for k in sys.argv[2:]:
    v = r.get(k, "")
    if isinstance(v, list):
        v = " ".join(v) or "none"
    print("%s=%s" % (k, shlex.quote(str(v))))' "$@"
}
# tls_curl [curl args...]: curl with the cluster's CA and client certificate.
tls_curl() {
    curl -sS --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" "$@"
}
# digest_ok FILE: the last 32 bytes are the sha256 of the rest (etcdctl's snapshot format).
digest_ok() {
    python3 - "$1" <<'EOF'
import hashlib, sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if len(d) > 32 and hashlib.sha256(d[:-32]).digest() == d[-32:] else 1)
EOF
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
