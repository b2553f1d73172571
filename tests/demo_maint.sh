#!/usr/bin/env bash
# demo_maint.sh - the day-2 part of `make demo` (called at the end of tests/demo.sh): a cluster
# with a small backend quota is filled until etcd raises NOSPACE and refuses writes; keys are
# deleted and the agents (the leader's coordinates) compact, defragment every member and disarm
# the alarm: writable again without a human. Then the agent's text table next to etcdctl's.
# usage: tests/demo_maint.sh [--build DIR]
set -u
cd "$(dirname "$0")/.."
BUILD=build
[ "${1:-}" = --build ] && BUILD=$2
AGENT=$PWD/$BUILD/etcd-agent
FILL=$PWD/$BUILD/tests/bench/bench_fill
[ -n "${ETCD_BIN_DIR:-}" ] && PATH=$ETCD_BIN_DIR:$PATH
# shellcheck source=tests/cluster.sh
source tests/cluster.sh
bold=$(tput bold 2>/dev/null || true) plain=$(tput sgr0 2>/dev/null || true)
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '   %s\n' "$*"; }
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    cluster_down
}
trap cleanup EXIT

say "Story 5: NOSPACE: a full backend, recovered by the agents without a human"
quota=$((24 * 1024 * 1024))
eval "$(ETCD_TEST_EXTRA_FLAGS="--quota-backend-bytes=$quota" tests/cluster.sh up 3)" || exit 1
note "a fresh 3-member cluster with --quota-backend-bytes=$quota; agents with --nospace-compact"
declare -a A
for i in 0 1 2; do
    port=$(_cluster_free_ports 1)
    A[$i]=http://127.0.0.1:$port
    "$AGENT" --endpoints "$(cluster_client-url "$i")" --cacert "$ETCD_TEST_CACERT" \
        --cert "$ETCD_TEST_CERT" --key "$ETCD_TEST_KEY" --listen "127.0.0.1:$port" \
        --name "etcd-$i" --defrag-settle 1s --nospace-compact 2>>"$CLUSTER_DIR/members/$i/agent.log" &
    pids+=($!)
done
"$FILL" "$(cluster_client-url 0)" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" 60 1000000 \
    /demo/big/ >/dev/null 2>&1
note "wrote 1 MB values until etcd refused: $(cluster_etcdctl 0 alarm list | tr '\n' ' ')"
note "a put now: $(cluster_etcdctl 0 put /demo/k v 2>&1 | tail -1)"
note "the operator deletes the big keys: $(cluster_etcdctl 0 del /demo/big/ --prefix) deleted"
t0=$SECONDS
until cluster_etcdctl 0 put /demo/k v >/dev/null 2>&1 && [ -z "$(cluster_etcdctl 0 alarm list)" ]; do
    [ $((SECONDS - t0)) -gt 120 ] && { note "not recovered in 120 s"; exit 1; }
    sleep 1
done
note "writable again after $((SECONDS - t0)) s; what the agents did:"
cat "$CLUSTER_DIR"/members/*/agent.log | grep -h '"maint: ' | grep -v hashkv |
    python3 -c '
import json, sys
lines = sorted((json.loads(l) for l in sys.stdin if l.strip()), key=lambda j: j["time"])
for j in lines:
    print("   %s %s %s" % (j["time"][11:19], j["msg"], j.get("member") or j.get("reason") or ""))'
sleep 6
say "The cluster table: etcdctl endpoint health --cluster -w table, then the agent's"
cluster_etcdctl 0 endpoint health --cluster -w table 2>&1 | sed 's/^/   /'
curl -s -H 'Accept: text/plain' "${A[0]}/members" | sed 's/^/   /'
