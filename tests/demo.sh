#!/usr/bin/env bash
# demo.sh - acts out the recoveries on a 3-member TLS etcd cluster on loopback, each member
# started the way the StatefulSet starts it: reset-member first, then etcd through
# `reset-member exec --env-file` (the etcd container's command: the state and initial cluster
# from the env file, no shell), with an etcd-agent beside it. Prints the agent's /members table
# after each story. Story 4c backs up to a local S3 store (tests/s3/server.sh: s3rver behind a
# SigV4-verifying proxy; node, npm, awscli, age from `make deps`) and recovers a lost quorum from
# it with ETCD_RESTORE_FROM=s3://.../ alone.
# usage: tests/demo.sh [--build DIR]     (make demo)
set -u
cd "$(dirname "$0")/.."
BUILD=build
[ "${1:-}" = --build ] && BUILD=$2
RESET=$PWD/$BUILD/reset-member
AGENT=$PWD/$BUILD/etcd-agent
for b in "$RESET" "$AGENT"; do
    [ -x "$b" ] || { echo "demo: $b is not built (run make)" >&2; exit 1; }
done
# shellcheck source=tests/cluster.sh
source tests/cluster.sh

bold=$(tput bold 2>/dev/null || true) plain=$(tput sgr0 2>/dev/null || true)
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '   %s\n' "$*"; }
t_start=$SECONDS
AGENT_PIDS=()

S3_DIRS=()
cleanup() {
    local p d
    for d in "${S3_DIRS[@]}"; do tests/s3/server.sh stop "$d"; done
    for p in "${AGENT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    # only the agents: etcd processes were started from this shell too (the harness is sourced)
    [ ${#AGENT_PIDS[@]} -gt 0 ] && wait "${AGENT_PIDS[@]}" 2>/dev/null
    if [ -n "${CLUSTER_DIR:-}" ]; then
        mkdir -p "$LOGDIR" && cp -r "$CLUSTER_DIR"/members "$LOGDIR/" 2>/dev/null
        find "$LOGDIR" -type d -name data -prune -exec rm -rf {} + 2>/dev/null
        find "$LOGDIR" -type d -name 'data.reset-*' -prune -exec rm -rf {} + 2>/dev/null
    fi
    cluster_down
}
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/etcd-recovery-demo.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT # the same INT/TERM handling as tests/lib/lib.bash: the EXIT trap cleans up
trap 'exit 143' TERM

# The pod's init container and main container for member i (extra reset-member flags after i).
pod_start() {
    local i=$1 m out
    shift
    m="$CLUSTER_DIR/members/$i"
    out=$("$RESET" --name "etcd-$i" --data-dir "$m/data" --peer-url "$(cluster_peer-url "$i")" \
        --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster")" \
        --initial-cluster-token "$(cat "$CLUSTER_DIR/token")" \
        --endpoints "$(cat "$CLUSTER_DIR/endpoints")" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --state-file "$m/state" --env-file "$m/env" --timeout 5s "$@" 2>>"$m/reset-member.log")
    local rc=$?
    note "reset-member etcd-$i: $out"
    [ $rc = 0 ] || return $rc
    etcd_start "$i"
}

# The etcd container: `reset-member exec --env-file ENV -- etcd`, which sets
# ETCD_INITIAL_CLUSTER_STATE and ETCD_INITIAL_CLUSTER from the env file over the pod env (here:
# the full ETCD_INITIAL_CLUSTER, as in the manifest) and execs etcd. The other settings are
# flags, as tests/cluster.sh's start passes them (same pid file and log, so stop/kill work).
etcd_start() {
    local i=$1 m="$CLUSTER_DIR/members/$1" d=$CLUSTER_DIR cp pp mp etcd_bin n0 n
    cp=$(cat "$m/client_port") pp=$(cat "$m/peer_port") mp=$(cat "$m/metrics_port")
    etcd_bin=$(command -v etcd) || return 1
    n0=$(grep -c '"msg":"exec"' "$m/etcd.log" 2>/dev/null)
    # shellcheck disable=SC2046
    env $(env | grep -o '^ETCD[A-Z_]*' | sed 's/^/-u /') \
        ETCD_INITIAL_CLUSTER="$(cat "$d/initial_cluster")" \
        setsid "$RESET" exec --env-file "$m/env" -- "$etcd_bin" --name "etcd-$i" \
        --data-dir "$m/data" \
        --listen-client-urls "https://127.0.0.1:$cp" --advertise-client-urls "https://127.0.0.1:$cp" \
        --listen-peer-urls "https://127.0.0.1:$pp" --initial-advertise-peer-urls "https://127.0.0.1:$pp" \
        --listen-metrics-urls "http://127.0.0.1:$mp" --initial-cluster-token "$(cat "$d/token")" \
        --cert-file "$d/node.crt" --key-file "$d/node.key" --trusted-ca-file "$d/ca.crt" \
        --client-cert-auth --peer-cert-file "$d/node.crt" --peer-key-file "$d/node.key" \
        --peer-trusted-ca-file "$d/ca.crt" --peer-client-cert-auth \
        --logger zap --log-outputs stderr >>"$m/etcd.log" 2>&1 </dev/null &
    echo $! >"$m/pid"
    disown $! 2>/dev/null || true
    for _ in $(seq 1 50); do # exec's log line, written just before etcd starts
        n=$(grep -c '"msg":"exec"' "$m/etcd.log" 2>/dev/null) # (nothing while the log is not there)
        [ "${n:-0}" -gt "${n0:-0}" ] && break
        sleep 0.1
    done
    _cluster_alive "$i" || { tail -5 "$m/etcd.log" >&2; echo "demo: etcd-$i exited at start" >&2; return 1; }
    note "etcd-$i: $(grep '"msg":"exec"' "$m/etcd.log" | tail -1 | python3 -c '
import json, sys
l = json.loads(sys.stdin.read() or "{}")
print("reset-member exec -> etcd, state %s, initial cluster %s" % (l.get("state"),
      (l.get("initial_cluster") or "(pod env)")[:60]))' 2>/dev/null)"
}

agent_start() {
    local i=$1 port
    port=$(_cluster_free_ports 1)
    echo "$port" >"$CLUSTER_DIR/members/$i/agent_port"
    # --cluster-endpoints as the manifest's ETCD_AGENT_CLUSTER_ENDPOINTS (a learner refuses
    # MemberList, so a restarted agent's table can be stale), but with our own URL last: the
    # promote channel stays on the first endpoint that connects, and a learner refuses
    # MemberPromote ("rpc not supported for learner")
    local others="" j
    for j in 0 1 2; do [ "$j" = "$i" ] || others+="$(cluster_client-url "$j"),"; done
    "$AGENT" --endpoints "$(cluster_client-url "$i")" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --cluster-endpoints "$others$(cluster_client-url "$i")" \
        --listen "127.0.0.1:$port" --name "etcd-$i" --data-dir "$CLUSTER_DIR/members/$i/data" \
        --probe-interval 500ms 2>>"$CLUSTER_DIR/members/$i/agent.log" &
    AGENT_PIDS+=($!)
}

agent_url() { echo "http://127.0.0.1:$(cat "$CLUSTER_DIR/members/$1/agent_port")"; }

members_table() {
    local who=${1:-0}
    sleep 0.3
    curl -s "$(agent_url "$who")/members" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception as e:
    print("   (no table yet: %s)" % e); sys.exit(0)
print("   %-17s %-7s %-8s %-8s %-8s %s" % ("ID", "NAME", "LEARNER", "HEALTHY", "TOOK_MS", "ERROR"))
for m in d.get("members", []):
    print("   %-17s %-7s %-8s %-8s %-8s %s" % (m.get("id"), m.get("name") or "-", m.get("learner"),
          m.get("healthy"), m.get("took_ms"), m.get("error") or ""))
v = d.get("verdict", {})
print("   verdict: quorum=%s failing=%s recoverable=%s" % (v.get("quorum"), v.get("failing"),
      v.get("recoverable")))'
}

wait_voting() { # wait until member i is started, healthy and not a learner
    local i=$1 deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        if cluster_etcdctl all member list -w json 2>/dev/null | python3 -c '
import json, sys
name = sys.argv[1]
ms = json.load(sys.stdin).get("members", [])
sys.exit(0 if any(m.get("name") == name and not m.get("isLearner") for m in ms) else 1)' "etcd-$i" &&
            cluster_etcdctl "$i" endpoint health >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "demo: etcd-$i did not become a healthy voting member" >&2
    return 1
}

# keys under demo/ as member i serves them from its own store (serializable read)
count_keys() { cluster_etcdctl "$1" get --prefix demo/ --consistency=s --keys-only | grep -c '^demo/'; }

say "Three members, each started like the StatefulSet starts a pod: reset-member, then etcd"
CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/etcd-cluster.XXXXXX")
export CLUSTER_DIR
touch "$CLUSTER_DIR/.etcd-test-cluster"
echo 3 >"$CLUSTER_DIR/n"
echo "demo-$$" >"$CLUSTER_DIR/token"
_cluster_certs "$CLUSTER_DIR" || exit 1
ic="" eps=""
for i in 0 1 2; do
    ic+="${ic:+,}etcd-$i=$(cluster_alloc $i)"
    eps+="${eps:+,}$(cluster_client-url $i)"
done
echo "$ic" >"$CLUSTER_DIR/initial_cluster"
echo "$eps" >"$CLUSTER_DIR/endpoints"
for i in 0 1 2; do pod_start $i || exit 1; done
cluster_wait-healthy 0 1 2 || exit 1
for i in 0 1 2; do agent_start $i; done
for k in $(seq 1 100); do echo "put demo/key$k value$k"; done | cluster_etcdctl 0 txn >/dev/null 2>&1 ||
    for k in $(seq 1 100); do cluster_etcdctl 0 put "demo/key$k" "value$k" >/dev/null; done
note "wrote 100 keys under demo/"
members_table 0

say "Story 1: etcd-1's volume is lost (PVC and pod deleted) -> it rejoins on restart"
cluster_stop 1
rm -rf "$CLUSTER_DIR/members/1/data"
note "deleted etcd-1's data dir; restarting the pod"
pod_start 1 || exit 1
wait_voting 1 || exit 1
note "etcd-1 serves $(count_keys 1) keys (serializable read on etcd-1)"
members_table 0

say "Story 2: etcd-2 is removed from the cluster while running -> it rejoins on restart"
id2=$(cluster_member-id 2)
# etcd refuses membership changes until every voter has been connected for 5 s (etcd-1 just
# joined): retry, as an operator would
for try in $(seq 1 30); do
    cluster_etcdctl 0 member remove "$id2" >/dev/null 2>&1 && break
    [ "$try" = 30 ] && { echo "demo: member remove $id2 kept failing" >&2; exit 1; }
    sleep 1
done
note "removed member $id2; etcd-2 exits with 'the member has been permanently removed'"
sleep 1
cluster_stop 2
pod_start 2 || exit 1
wait_voting 2 || exit 1
note "etcd-2 serves $(count_keys 2) keys; the old data dir was moved aside, not deleted:"
ls -d "$CLUSTER_DIR"/members/2/data.reset-* 2>/dev/null | sed 's/^/   /'
members_table 0

say "Story 3: etcd-0's database is corrupted (both bbolt meta pages) -> it is reset and rejoins"
cluster_stop 0
dd if=/dev/urandom of="$CLUSTER_DIR/members/0/data/member/snap/db" bs=4096 count=2 conv=notrunc \
    status=none
note "overwrote the first two pages of etcd-0's db"
pod_start 0 || exit 1
wait_voting 0 || exit 1
note "etcd-0 serves $(count_keys 0) keys"
members_table 1

say "Story 4: quorum loss -> restore from a snapshot taken through the agent"
SNAP=$CLUSTER_DIR/snapshot.db
read -r snap_port snap_plain <<<"$(_cluster_free_ports 2)"
if "$AGENT" --help 2>&1 | grep -q -- allow-insecure-snapshot; then
    # /snapshot hands out every key: the agent serves it only to a client certificate (mTLS)
    # unless --allow-insecure-snapshot. The demo's agents listen on plain HTTP, so a second
    # agent beside etcd-0 listens with TLS and requires client certs signed by the cluster CA.
    "$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --listen "127.0.0.1:$snap_plain" --tls-listen "127.0.0.1:$snap_port" --tls-cert "$CLUSTER_DIR/node.crt" \
        --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$CLUSTER_DIR/ca.crt" --name etcd-0 \
        --data-dir "$CLUSTER_DIR/members/0/data" 2>>"$CLUSTER_DIR/members/0/agent-tls.log" &
    AGENT_PIDS+=($!)
    for _ in $(seq 1 40); do
        curl -sf --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
            --key "$CLUSTER_DIR/client.key" -o "$SNAP" "https://127.0.0.1:$snap_port/snapshot" && break
        sleep 0.25
    done
    note "the snapshot route holds every key: served only over mTLS, so the demo asks a second agent"
    note "beside etcd-0 with a TLS listener and client-cert checks (not --allow-insecure-snapshot)"
    note "GET https://127.0.0.1:$snap_port/snapshot with the client cert (mTLS) -> $(stat -c %s "$SNAP" 2>/dev/null || echo 0) bytes"
fi
if [ ! -s "$SNAP" ]; then
    cluster_etcdctl 0 snapshot save "$SNAP" >/dev/null 2>&1 || exit 1
    note "this agent has no /snapshot route yet: took it with etcdctl snapshot save (same format)"
fi
note "snapshot: $(stat -c %s "$SNAP") bytes = bbolt db + 32-byte sha256"
cluster_etcdctl 0 put demo/after-snapshot lost >/dev/null
cluster_stop 1
cluster_stop 2
for i in 1 2; do
    dd if=/dev/urandom of="$CLUSTER_DIR/members/$i/data/member/snap/db" bs=4096 count=2 \
        conv=notrunc status=none
done
note "etcd-1 and etcd-2 lost their databases: etcd-0 is alone, the cluster has no quorum"
pod_start 1
note "-> refused (exit $?): reset-member never moves data that may be the last copy"
members_table 0

say "Story 4b: restore: etcd-0 restores the snapshot as a one-member cluster, the others rejoin"
note "the operator sets ETCD_RESTORE_FROM=$SNAP on all three pods"
cluster_stop 0
t_restore=$SECONDS
pod_start 0 --restore-from "$SNAP" || exit 1
cluster_wait-healthy 0 >/dev/null || exit 1
note "etcd-0 is a new one-member cluster (new token, new cluster ID) with the snapshot's keys"
for i in 1 2; do
    # kubelet retries the init container: it refuses until the cluster can take this member
    # (etcd-0 up; the previous learner promoted by the agent: etcd allows one learner)
    for try in $(seq 1 60); do
        pod_start "$i" --restore-from "$SNAP" && break
        [ "$try" = 60 ] && exit 1
        sleep 1
    done
    wait_voting "$i" || exit 1
done
note "restored and rejoined in $((SECONDS - t_restore)) s"
for i in 0 1 2; do
    note "etcd-$i serves $(count_keys "$i") keys under demo/ (serializable read on etcd-$i)"
done
note "(the 100 keys of the snapshot; demo/after-snapshot, written after it, is gone as expected)"
members_table 0

say "Story 4c: quorum loss with off-node backups -> ETCD_RESTORE_FROM=s3://.../ is the whole recovery"
t_story=$SECONDS
# a local S3 store: s3rver behind a proxy that verifies every SigV4 signature (tests/s3)
S3_ENV=$(tests/s3/server.sh start) || { echo "demo: the S3 store did not start (make deps: nodejs, npm, python3-botocore)" >&2; exit 1; }
eval "$S3_ENV"
S3_DIRS+=("$S3_TEST_DIR")
STORE="s3://$S3_TEST_BUCKET/etcd-demo/"
age-keygen -o "$CLUSTER_DIR/backup-identity.txt" 2>/dev/null || exit 1
RCPT=$(age-keygen -y "$CLUSTER_DIR/backup-identity.txt")
note "store $STORE at $AWS_ENDPOINT_URL; age key pair made: the agent gets only the public key"
note "($RCPT), the private one stays for the restore (in Kubernetes: a Secret in manifests/restore/)"
read -r bk_tls bk_plain <<<"$(_cluster_free_ports 2)"
"$AGENT" --endpoints "$(cluster_client-url 1)" --cacert "$CLUSTER_DIR/ca.crt" \
    --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
    --listen "127.0.0.1:$bk_plain" --tls-listen "127.0.0.1:$bk_tls" --tls-cert "$CLUSTER_DIR/node.crt" \
    --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$CLUSTER_DIR/ca.crt" --name etcd-1 \
    --spool-dir "$CLUSTER_DIR" --backup-url "$STORE" --backup-recipient "$RCPT" \
    2>>"$CLUSTER_DIR/members/1/agent-backup.log" &
bk_pid=$!
AGENT_PIDS+=("$bk_pid")
mtls() { curl -s --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" "$@"; }
for _ in $(seq 1 40); do
    code=$(mtls -o "$CLUSTER_DIR/backup.json" -w '%{http_code}' -X POST "https://127.0.0.1:$bk_tls/backups")
    [ "$code" = 200 ] && break
    sleep 0.25
done
[ "$code" = 200 ] || { echo "demo: POST /backups answered $code: $(cat "$CLUSTER_DIR/backup.json" 2>/dev/null)" >&2; exit 1; }
note "etcd-1's agent (started with --backup-url $STORE --backup-recipient age1...):"
note "POST /backups (mTLS; --backup-interval does the same on a schedule, one agent per interval):"
mtls "https://127.0.0.1:$bk_tls/backups" | python3 -c '
import json, sys
for b in json.load(sys.stdin).get("backups", [])[:1]:
    m = b.get("manifest", {})
    print("   GET /backups, newest: %s\n     revision %s, db %s bytes -> %s bytes stored (%s, %s), took %s ms"
          % (b.get("name"), m.get("revision"), m.get("db_size"), m.get("object_size"),
             m.get("compression"), m.get("encryption"), m.get("took_ms")))'
note "aws s3 ls --recursive ${STORE}:"
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 ls --recursive "$STORE" | sed 's/^/     /'
cluster_etcdctl 0 put demo/after-backup lost >/dev/null
kill "$bk_pid" 2>/dev/null
stops=()
for i in 0 1 2; do # all pods at once
    cluster_stop "$i" &
    stops+=($!)
done
wait "${stops[@]}"
rm -rf "$CLUSTER_DIR/members/1/data" "$CLUSTER_DIR/members/2/data"
note "all pods restart, and etcd-1's and etcd-2's volumes are gone: no quorum, no snapshot in hand"

note "the operator sets ETCD_RESTORE_FROM=$STORE (and ETCD_RESTORE_IDENTITY_FILE) on all three pods"
export ETCD_RESTORE_FROM=$STORE ETCD_RESTORE_IDENTITY_FILE=$CLUSTER_DIR/backup-identity.txt
t_restore=$SECONDS
pod_start 0 || exit 1
cluster_wait-healthy 0 >/dev/null || exit 1
python3 -c '
import json, sys
r = {}
for line in open(sys.argv[1]):
    try:
        r = json.loads(line).get("restore", r)
    except ValueError:
        pass
print("   etcd-0 restored %s (the newest complete backup; sha256 %s...),\n     downloaded and decrypted in %.0f ms, restored by %s; revision bump: %s%s"
      % (r.get("object"), r.get("object_sha256", "")[:16], r.get("fetch_ms", 0), r.get("tool"),
         r.get("bump"), " (" + " ".join(r.get("bump_flags", [])) + ")" if r.get("bump_flags") else
         " (etcd 3.4 etcdctl: no --bump-revision; etcd 3.5+ etcdutl has it)"))' \
    "$CLUSTER_DIR/members/0/reset-member.log"
for i in 1 2; do
    for try in $(seq 1 60); do # the kubelet retries the init container until etcd-0 takes it
        pod_start "$i" >/dev/null && break
        [ "$try" = 60 ] && exit 1
        sleep 1
    done
    wait_voting "$i" || exit 1
done
unset ETCD_RESTORE_FROM ETCD_RESTORE_IDENTITY_FILE
note "etcd-1 and etcd-2 rejoined as learners and were promoted; $((SECONDS - t_restore)) s from the env var to 3 voters"
for i in 0 1 2; do
    n=$(count_keys "$i")
    note "etcd-$i serves $n keys under demo/ (serializable read on etcd-$i)"
    [ "$n" = 100 ] || { echo "demo: etcd-$i serves $n keys, not the backup's 100" >&2; exit 1; }
done
note "revision now $(cluster_etcdctl 0 endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])');"\
" demo/after-backup, written after the backup, is gone as expected"
tests/s3/server.sh stop "$S3_TEST_DIR"
note "story 4c took $((SECONDS - t_story)) s"
members_table 0

# day-2 maintenance: NOSPACE recovery and the text table, on a cluster of its own
bash tests/demo_maint.sh --build "$BUILD" || exit 1

say "Done in $((SECONDS - t_start)) s. Logs (etcd, reset-member, agent per member): $LOGDIR"
