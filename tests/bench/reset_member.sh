#!/usr/bin/env bash
# reset_member.sh - steady-state (`keep`) wall time of reset-member next to the bash
# equivalent HyperShift's init container runs (bash + `etcdctl member list -w json` + a JSON
# filter, jq here), both against the same real 3-member TLS cluster with the member stopped
# (as during a pod restart), with the same certificates. Beside them, the floors: /bin/true (what
# starting any process costs here), `reset-member --version` (reset-member's own start: the
# loader and its libraries, no TLS, no I/O) and bench_tlsfloor (a process that only makes one
# mTLS handshake with etcd with the same certificates, plain OpenSSL: what any OpenSSL 3 client
# pays before it can ask etcd anything).
#
# Timing: bash's $EPOCHREALTIME around each run (no clock process spawned); the four are run in
# turn, round after round, so that load from elsewhere falls on all of them alike; medians (and
# minima). CPU: user+sys per run, averaged (getrusage of the children through the `times`
# builtin, read before and after each run of the same rounds). Goal: keep <= 30 ms and >= 14x
# faster than the bash equivalent.
#
# usage: tests/bench/reset_member.sh [--build DIR]     (BENCH_RUNS=N rounds, default 20)
set -u
export LC_ALL=C # $EPOCHREALTIME with a '.'
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR]" >&2; exit 2 ;;
    esac
done
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RM=$BUILD/reset-member
RUNS=${BENCH_RUNS:-20}
GOAL_MS=30
GOAL_RATIO=14

# shellcheck source=../cluster.sh
source "$ROOT/tests/cluster.sh"
trap 'cluster_down >/dev/null 2>&1' EXIT
[ -x "$RM" ] || { echo "reset-member not built: $RM" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing" >&2; exit 1; }
cluster_up 3 >/dev/null 2>&1 || { echo "cluster up failed" >&2; exit 1; }
cluster_stop 1

i=1
NAME=etcd-$i
DATA=$(cluster_data-dir $i)
PEER=$(cluster_peer-url $i)
EPS=$(cat "$CLUSTER_DIR/endpoints")
STATE=$CLUSTER_DIR/members/$i/state
export CA=$CLUSTER_DIR/ca.crt CERT=$CLUSTER_DIR/client.crt KEY=$CLUSTER_DIR/client.key

rm_keep() {
    "$RM" --name "$NAME" --data-dir "$DATA" --peer-url "$PEER" --endpoints "$EPS" \
        --cacert "$CA" --cert "$CERT" --key "$KEY" --state-file "$STATE" "$@"
}

# The bash equivalent: is a member of our name listed? then existing, else new.
BASH_EQ='
list=$(ETCDCTL_API=3 etcdctl --endpoints "$1" --cacert "$CA" --cert "$CERT" --key "$KEY" \
    member list -w json) || exit 1
if jq -e --arg n "$2" ".members[] | select(.name == \$n)" <<<"$list" >/dev/null; then
    echo existing >"$3"
else
    echo new >"$3"
fi'
run_true() { /bin/true >/dev/null 2>&1; }
run_version() { "$RM" --version >/dev/null 2>&1; }
TLSFLOOR=$BUILD/tests/bench/bench_tlsfloor
EP0=${EPS%%,*}
EP0=${EP0#https://}
run_tls() { "$TLSFLOOR" "${EP0%:*}" "${EP0##*:}" "$CA" "$CERT" "$KEY" >/dev/null 2>&1; }
run_keep() { rm_keep >/dev/null 2>&1; }
run_bash() { bash -c "$BASH_EQ" bash "$EPS" "$NAME" "$STATE.bash" >/dev/null 2>&1; }
SUBJECTS=(true version tls keep bash)

out=$(rm_keep 2>/dev/null)
case $out in *'"action":"keep"'*) ;; *) echo "expected keep, got: $out" >&2; exit 1 ;; esac
run_bash || { echo "bash equivalent failed" >&2; exit 1; }
[ "$(cat "$STATE")" = "$(cat "$STATE.bash")" ] || echo "note: states differ" >&2

# children_ms: user+sys CPU of this shell's finished children so far, in ms (the `times`
# builtin reports getrusage(RUSAGE_CHILDREN) to the ms; no process is spawned to read it).
TIMES=$CLUSTER_DIR/times
children_ms() {
    local u s
    times >"$TIMES"
    { read -r _ && read -r u s; } <"$TIMES"
    ms_of "$u"
    CHILD_MS=$MS
    ms_of "$s"
    CHILD_MS=$((CHILD_MS + MS))
}
ms_of() { # 1m2.345s -> MS=62345, without a subshell (its CPU would be counted)
    local v=${1%s} m
    m=${v%%m*}
    v=${v#*m}
    MS=$((m * 60000 + 10#${v/./}))
}

# Round 0 warms up (page cache, etcd's connection handling), rounds 1..RUNS count. Wall is
# $EPOCHREALTIME right around each run; CPU is the children's rusage before and after it.
declare -A US CPU
for s in "${SUBJECTS[@]}"; do CPU[$s]=0; done
for r in $(seq 0 "$RUNS"); do
    for s in "${SUBJECTS[@]}"; do
        children_ms
        c0=$CHILD_MS
        t0=$EPOCHREALTIME
        "run_$s" || { echo "$s failed in round $r" >&2; exit 1; }
        t1=$EPOCHREALTIME
        children_ms
        [ "$r" = 0 ] && continue
        US[$s]+="$((${t1/./} - ${t0/./})) "
        CPU[$s]=$((CPU[$s] + CHILD_MS - c0))
    done
done
# wall_stat s: "median min" in ms
wall_stat() { tr ' ' '\n' <<<"${US[$1]}" | grep . | sort -n |
    awk '{a[NR]=$1} END {printf "%.1f %.1f", a[int((NR+1)/2)]/1000, a[1]/1000}'; }
read -r true_ms true_min <<<"$(wall_stat true)"
read -r ver_ms ver_min <<<"$(wall_stat version)"
read -r tls_ms tls_min <<<"$(wall_stat tls)"
read -r keep_ms keep_min <<<"$(wall_stat keep)"
read -r bash_ms bash_min <<<"$(wall_stat bash)"
cpu() { awk -v t="${CPU[$1]}" -v n="$RUNS" 'BEGIN {printf "%.2f", t / n}'; }
true_cpu=$(cpu true)
ver_cpu=$(cpu version)
tls_cpu=$(cpu tls)
keep_cpu=$(cpu keep)
bash_cpu=$(cpu bash)

# time inside reset-member's main (its log line's took_ms), median of a few runs
in_ms=$(for _ in $(seq 1 9); do
    rm_keep 2>&1 >/dev/null | grep -o '"took_ms":[0-9.]*' | cut -d: -f2
done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "inf"}'; }
net() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {if (b > f) printf "%.1f", (a - f) / (b - f); else print "inf"}'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "wall: median (min) of $RUNS interleaved rounds, CPU: mean of the same runs; load average $load"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "/bin/true (spawn floor)" "$true_ms" "$true_min" "$true_cpu"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "reset-member --version (its start)" "$ver_ms" "$ver_min" "$ver_cpu"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "one mTLS handshake, plain OpenSSL (TLS floor)" "$tls_ms" "$tls_min" "$tls_cpu"
printf '  %-44s %7s ms (%5s)   CPU %6s ms   (goal <= %s ms)\n' "reset-member keep" "$keep_ms" "$keep_min" "$keep_cpu" "$GOAL_MS"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "bash + etcdctl member list -w json + jq" "$bash_ms" "$bash_min" "$bash_cpu"
echo "time inside reset-member's main (median took_ms): $in_ms ms"
echo "ratio: $(ratio "$bash_ms" "$keep_ms")x wall (goal >= ${GOAL_RATIO}x), $(ratio "$bash_cpu" "$keep_cpu")x CPU;" \
    "net of the spawn floor: $(net "$bash_ms" "$keep_ms" "$true_ms")x wall," \
    "$(net "$bash_cpu" "$keep_cpu" "$true_cpu")x CPU"
echo "the TLS floor: keep is $(ratio "$keep_ms" "$tls_ms")x of one bare mTLS handshake's wall time; the bash" \
    "equivalent over the TLS floor is $(ratio "$bash_ms" "$tls_ms")x (the most any OpenSSL 3 client could reach here)"
