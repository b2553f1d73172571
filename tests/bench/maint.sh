#!/usr/bin/env bash
# maint.sh - issue 12's figures on a 3-member TLS cluster (tests/cluster.sh) with agents:
# /readyz p99 (wrk) on a member's agent while that member is defragmented vs idle; how long a
# member is unavailable (its Defragment call) per 100 MB of live data; write p99 (sequential
# small Puts) while HashKV runs on every member vs idle. Short: ~150 MB of data.
# usage: tests/bench/maint.sh [--build DIR] [--mb N]
set -u
cd "$(dirname "$0")/../.."
build=build mb=150
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--mb N]" >&2; exit 2 ;;
    esac
done
[ -n "${ETCD_BIN_DIR:-}" ] && PATH=$ETCD_BIN_DIR:$PATH
fill=$build/tests/bench/bench_fill put=$build/tests/bench/bench_put_latency agent=$build/etcd-agent
for b in "$fill" "$put" "$agent"; do [ -x "$b" ] || { echo "maint.sh: $b not built (make tests)" >&2; exit 1; }; done
source tests/cluster.sh
apid=""
trap '[ -n "$apid" ] && kill $apid 2>/dev/null; cluster_down' EXIT
cluster_up 3 >/dev/null || exit 1
ep=$(cluster_client-url 1)
port=$(_cluster_free_ports 1)
# the agent beside member 1 (a follower or not: its probes answer from the cache either way)
"$agent" --endpoints "$ep" --cacert "$ETCD_TEST_CACERT" --cert "$ETCD_TEST_CERT" --key "$ETCD_TEST_KEY" \
    --listen "127.0.0.1:$port" --defrag-interval 0 --hashkv-interval 0 2>/dev/null &
apid=$!
sleep 2
"$fill" "$ep" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" "$mb" 1000000 /bench/live/ || exit 1
p99() { wrk -t2 -c32 -d"$1" --latency "http://127.0.0.1:$port/readyz" | awk '/ 99%/ {print $2}'; }
echo "/readyz p99 idle: $(p99 5s)"
ctl() { cluster_etcdctl 1 --command-timeout 600s "$@"; }
( t0=$(date +%s%N); ctl defrag >/dev/null; echo $((($(date +%s%N) - t0) / 1000000)) >/tmp/maint-bench-defrag.$$ ) &
dpid=$!
sleep 0.3
echo "/readyz p99 during the defrag of its member: $(p99 3s)"
wait $dpid
ms=$(cat /tmp/maint-bench-defrag.$$; rm -f /tmp/maint-bench-defrag.$$)
live=$(cluster_etcdctl 1 endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])')
echo "defrag of a member with $((live / 1000000)) MB: ${ms} ms unavailable"
awk -v ms="$ms" -v b="$live" 'BEGIN { printf "member unavailable per 100 MB defragmented: %.2f s\n", ms / 1000 / (b / 1e8) }'
echo "write p99 idle: $("$put" "$ep" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" 200)"
( for _ in 1 2 3 4 5 6 7 8 9 10; do cluster_etcdctl 1 endpoint hashkv --cluster >/dev/null 2>&1; done ) &
hpid=$!
echo "write p99 during HashKV on every member: $("$put" "$ep" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" 200)"
kill $hpid 2>/dev/null
wait $hpid 2>/dev/null
exit 0
