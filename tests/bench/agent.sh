#!/usr/bin/env bash
# agent.sh - benchmark: wrk against the agent's /readyz, against nginx (one worker, a fixed 200
# JSON body of the same size: the ceiling for a one-loop server on these cores) and against
# etcd's own /health (member 0 of a 3-member TLS cluster; read from its plain-HTTP metrics
# listener because wrk cannot present client certificates), all in the same run. Prints req/s,
# p50/p99, the ratios agent/etcd and agent/nginx, a paced run (fixed moderate rate: latency
# without saturation), the agent's CPU per request and its idle RSS (anonymous vs shared
# files), for the built agent and, when `make static` made one, the shipped bundle's.
# Goals (issue 4): >= 20k req/s, p99 < 2 ms, >= 20x etcd, RSS <= 8 MiB.
# usage: tests/bench/agent.sh [--build DIR]   (or BUILD=DIR)
# env: BENCH_THREADS (2), BENCH_CONNS (64), BENCH_DURATION (10s), BENCH_PACED_DELAY_MS (20: each
# connection waits that long between answer and next request, <= CONNS*1000/delay req/s).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
[ "${1:-}" = --build ] && BUILD=$2
AGENT=$BUILD/etcd-agent
BUNDLE=$BUILD/static/rootfs # `make static BUILD=...` puts the shipped tree here
THREADS=${BENCH_THREADS:-2} CONNS=${BENCH_CONNS:-64} DURATION=${BENCH_DURATION:-10s}
PACED_DELAY_MS=${BENCH_PACED_DELAY_MS:-20}
# shellcheck source=../cluster.sh
source tests/cluster.sh

command -v wrk >/dev/null || { echo "skip: wrk not installed"; exit 77; }
[ -x "$AGENT" ] || { echo "bench: $AGENT missing (make all)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || NGINX="" # the ceiling is skipped (not an error) without nginx

work=$(mktemp -d "${TMPDIR:-/tmp}/etcd-agent-bench.XXXXXX")
pids=() # agents and nginx we started
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    cluster_down
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
code_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
wait_200() { # URL PID: up to 60 s
    local _
    for _ in $(seq 1 120); do
        [ "$(code_of "$1")" = 200 ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

eval "$(tests/cluster.sh up 3)" || exit 1

# start_agent NAME CMD...: the agent beside member 0 on a free port; sets agent_url, agent_pid.
start_agent() {
    local name=$1 port
    shift
    port=$(free_port)
    "$@" --endpoints "$(cluster_client-url 0)" --cacert "$ETCD_TEST_CACERT" --cert "$ETCD_TEST_CERT" \
        --key "$ETCD_TEST_KEY" --listen "127.0.0.1:$port" --probe-interval 1s --name etcd-0 \
        >"$work/$name.log" 2>&1 &
    agent_pid=$!
    pids+=("$agent_pid")
    agent_url=http://127.0.0.1:$port
    wait_200 "$agent_url/readyz" "$agent_pid" ||
        { echo "bench: agent ($name) not ready" >&2; tail "$work/$name.log" >&2; exit 1; }
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# rss_line PID: "VmRSS RssAnon RssFile" in KiB
rss_line() { echo "$(status_kib "$1" VmRSS) $(status_kib "$1" RssAnon) $(status_kib "$1" RssFile)"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_agent agent "$AGENT"
A=$agent_url
apid=$agent_pid
E=$(cluster_metrics-url 0)/health
[ "$(code_of "$E")" = 200 ] || { echo "bench: etcd /health not 200" >&2; exit 1; }

# nginx: one worker, no access log, the agent's /readyz body (same length) as a fixed answer.
N=""
if [ -n "$NGINX" ]; then
    # a fixed "return" like the agent's body in memory (a file would add ETag and sendfile);
    # $(...) drops the body's final newline: the \n in the nginx string puts it back
    body=$(curl -s "$A/readyz")
    body=${body//\\/\\\\}
    body=${body//\'/\\\'}
    mkdir -p "$work/nginx"
    nport=$(free_port)
    cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        location / {
            default_type application/json;
            return 200 '$body\n';
        }
    }
}
EOF
    # -e: nginx opens its error log before reading the config; keep it in the temp dir
    "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
        >"$work/nginx/stdout" 2>&1 &
    npid=$!
    pids+=("$npid")
    N=http://127.0.0.1:$nport/readyz
    if ! wait_200 "$N" "$npid"; then
        echo "bench: nginx did not start (ceiling skipped):" >&2
        cat "$work/nginx/error.log" "$work/nginx/stdout" >&2 2>/dev/null
        N=""
    fi
    nlen=$([ -n "$N" ] && curl -s "$N" | wc -c)
fi

sleep 3 # a few probe rounds: the agent's steady state
read -r idle_rss idle_anon idle_file <<<"$(rss_line "$apid")"

# run NAME URL [paced]: wrk with latency percentiles; prints "req/s p50_ms p99_ms requests".
pace_lua=$work/pace.lua
printf 'function delay()\n  return %d\nend\n' "$PACED_DELAY_MS" >"$pace_lua"
run() {
    local out=$work/$1.txt
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency ${3:+-s "$pace_lua"} "$2" >"$out" 2>&1
    local rps p50 p99 reqs errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/requests in/ {print $1}' "$out")
    # wrk prints "99%  1.23ms" (us, ms or s): normalize to ms.
    pct() {
        awk -v p="$1" '$1 == p {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
              m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v; print m}' "$out"
    }
    p50=$(pct 50%)
    p99=$(pct 99%)
    errs=$(awk '/Non-2xx|Socket errors/' "$out")
    [ -n "$errs" ] && echo "   $1: $errs" >&2
    echo "${rps:-0} ${p50:-0} ${p99:-0} ${reqs:-0}"
}

t0=$(cpu_ticks "$apid")
read -r a_rps a_p50 a_p99 a_reqs <<<"$(run agent "$A/readyz")"
t1=$(cpu_ticks "$apid")
read -r loaded_rss _ <<<"$(rss_line "$apid")"
n_rps=0 n_p50=0 n_p99=0 n_cpu_us=-
if [ -n "$N" ]; then
    wpid=$(pgrep -P "$npid" | head -1) # the one worker
    [ -n "$wpid" ] && n0=$(cpu_ticks "$wpid")
    read -r n_rps n_p50 n_p99 n_reqs <<<"$(run nginx "$N")"
    [ -n "$wpid" ] && n_cpu_us=$(python3 -c "import sys; t, r = (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]), int(sys.argv[4]); print('%.2f' % (t * 1e6 / r if r else 0))" "$n0" "$(cpu_ticks "$wpid")" "$(getconf CLK_TCK)" "$n_reqs")
fi
read -r e_rps e_p50 e_p99 _ <<<"$(run etcd "$E")"
read -r pa_rps pa_p50 pa_p99 _ <<<"$(run agent-paced "$A/readyz" paced)"
pn_rps=0 pn_p50=0 pn_p99=0
[ -n "$N" ] && read -r pn_rps pn_p50 pn_p99 _ <<<"$(run nginx-paced "$N" paced)"
read -r pe_rps pe_p50 pe_p99 _ <<<"$(run etcd-paced "$E" paced)"
sleep 2
read -r idle_after _ <<<"$(rss_line "$apid")"

div() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.${3:-1}f' % (a / b if b else 0))" "$1" "$2"; }
hz=$(getconf CLK_TCK)
cpu_us=$(python3 -c "import sys; t, r = (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]), int(sys.argv[4]); print('%.2f' % (t * 1e6 / r if r else 0))" "$t0" "$t1" "$hz" "$a_reqs")
line() { printf '%-14s: %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms%s\n' "$1" "$2" "$3" "$4" "${5:-}"; }
echo "wrk -t$THREADS -c$CONNS -d$DURATION, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "agent binary  : $AGENT"
line "agent /readyz" "$a_rps" "$a_p50" "$a_p99" "  ($cpu_us us CPU per request)"
[ -n "$N" ] && line "nginx (1 wkr)" "$n_rps" "$n_p50" "$n_p99" "  ($n_cpu_us us CPU per request; the ceiling: $NGINX, fixed ${nlen}-byte body)"
[ -z "$N" ] && echo "nginx         : not run (install the nginx package for the ceiling)"
line "etcd  /health" "$e_rps" "$e_p50" "$e_p99"
printf 'ratio         : agent/etcd %sx (goal >= 20x), agent/nginx %s (goal: >= 20000 req/s, p99 < 2 ms)\n' \
    "$(div "$a_rps" "$e_rps")" "$([ -n "$N" ] && div "$a_rps" "$n_rps" 2 || echo -)"
echo "paced         : each connection waits ${PACED_DELAY_MS} ms between answer and next request"
line "  agent" "$pa_rps" "$pa_p50" "$pa_p99"
[ -n "$N" ] && line "  nginx" "$pn_rps" "$pn_p50" "$pn_p99"
line "  etcd" "$pe_rps" "$pe_p50" "$pe_p99"
printf 'agent RSS     : idle %d KiB (%.1f MiB), under load %d KiB, idle after load %d KiB (goal <= 8 MiB)\n' \
    "$idle_rss" "$(awk -v k="$idle_rss" 'BEGIN {print k / 1024}')" "$loaded_rss" "$idle_after"
printf '                idle RssAnon %d KiB, RssFile %d KiB (code and read-only data mapped from files)\n' \
    "$idle_anon" "$idle_file"

# The shipped binary: `make static` relinks it with its own loader and RPATH into
# /usr/lib/etcd-recovery; run it through the bundled loader with the bundle's libraries.
if [ -x "$BUNDLE/usr/bin/etcd-agent" ]; then
    ld=$(ls "$BUNDLE"/usr/lib/etcd-recovery/ld-linux-*.so.* 2>/dev/null | head -1)
    if [ -n "$ld" ]; then
        start_agent bundle "$ld" --library-path "$BUNDLE/usr/lib/etcd-recovery" "$BUNDLE/usr/bin/etcd-agent"
        sleep 3
        read -r b_rss b_anon b_file <<<"$(rss_line "$agent_pid")"
        printf 'bundle RSS    : idle %d KiB (%.1f MiB): RssAnon %d KiB, RssFile %d KiB (%s via %s)\n' \
            "$b_rss" "$(awk -v k="$b_rss" 'BEGIN {print k / 1024}')" "$b_anon" "$b_file" \
            "$BUNDLE/usr/bin/etcd-agent" "$(basename "$ld")"
    fi
else
    echo "bundle RSS    : no $BUNDLE (make static BUILD=$BUILD measures the shipped binary too)"
fi
