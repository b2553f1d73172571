#!/usr/bin/env bash
# agent.sh - benchmark: wrk against the agent's /readyz and against etcd's own /health in the
# same run (member 0 of a 3-member TLS cluster; etcd's /health is read from its plain-HTTP
# metrics listener because wrk cannot present client certificates), then the ratio, and the
# agent's idle RSS. Goals (issue 4): >= 20k req/s, p99 < 2 ms, >= 20x etcd, RSS <= 8 MiB.
# usage: tests/bench/agent.sh [--build DIR]   (or BUILD=DIR)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
[ "${1:-}" = --build ] && BUILD=$2
AGENT=$BUILD/etcd-agent
THREADS=${BENCH_THREADS:-2} CONNS=${BENCH_CONNS:-64} DURATION=${BENCH_DURATION:-10s}
# shellcheck source=../cluster.sh
source tests/cluster.sh

command -v wrk >/dev/null || { echo "skip: wrk not installed"; exit 77; }
[ -x "$AGENT" ] || { echo "bench: $AGENT missing (make all)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/etcd-agent-bench.XXXXXX")
agent_pid=""
cleanup() {
    if [ -n "$agent_pid" ]; then
        kill -TERM "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
    fi
    cluster_down
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

eval "$(tests/cluster.sh up 3)" || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$ETCD_TEST_CACERT" --cert "$ETCD_TEST_CERT" \
    --key "$ETCD_TEST_KEY" --listen "127.0.0.1:$port" --probe-interval 1s --name etcd-0 \
    >"$work/agent.log" 2>&1 &
agent_pid=$!
A=http://127.0.0.1:$port
for _ in $(seq 1 120); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] && break
    sleep 0.5
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] ||
    { echo "bench: agent not ready" >&2; tail "$work/agent.log" >&2; exit 1; }
E=$(cluster_metrics-url 0)/health
[ "$(curl -s -o /dev/null -w '%{http_code}' "$E")" = 200 ] || { echo "bench: etcd /health not 200" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status"; }
sleep 3 # a few probe rounds: the agent's steady state
idle_rss=$(rss_kib)
# Shared-library pages (libcrypto alone is ~4 MiB touched) count in RSS but are shared with
# every other process mapping them; anonymous memory is what the agent itself allocates.
idle_anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$agent_pid/status")
idle_file=$(awk '/^RssFile:/ {print $2}' "/proc/$agent_pid/status")

# run NAME URL: wrk with latency percentiles; prints "req/s p99_ms".
run() {
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$2" >"$work/$1.txt" 2>&1
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/$1.txt")
    # wrk prints "99%  1.23ms" (us, ms or s): normalize to ms.
    p99=$(awk '$1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
              m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v; print m}' "$work/$1.txt")
    local errs
    errs=$(awk '/Non-2xx|Socket errors/' "$work/$1.txt")
    [ -n "$errs" ] && echo "   $1: $errs" >&2
    echo "${rps:-0} ${p99:-0}"
}

read -r a_rps a_p99 <<<"$(run agent "$A/readyz")"
loaded_rss=$(rss_kib)
read -r e_rps e_p99 <<<"$(run etcd "$E")"
sleep 2
idle_after=$(rss_kib)

ratio=$(python3 -c "import sys; a, e = float(sys.argv[1]), float(sys.argv[2]); print('%.1f' % (a / e if e else 0))" "$a_rps" "$e_rps")
printf 'agent /readyz : %10.0f req/s  p99 %7.2f ms  (wrk -t%s -c%s -d%s)\n' "$a_rps" "$a_p99" "$THREADS" "$CONNS" "$DURATION"
printf 'etcd  /health : %10.0f req/s  p99 %7.2f ms\n' "$e_rps" "$e_p99"
printf 'ratio         : %10sx        (goal >= 20x; agent goal >= 20000 req/s, p99 < 2 ms)\n' "$ratio"
printf 'agent RSS     : idle %d KiB (%.1f MiB), under load %d KiB, idle after load %d KiB (goal <= 8 MiB)\n' \
    "$idle_rss" "$(awk -v k="$idle_rss" 'BEGIN {print k / 1024}')" "$loaded_rss" "$idle_after"
printf '                idle RssAnon %d KiB, RssFile %d KiB (shared libraries)\n' "$idle_anon" "$idle_file"
