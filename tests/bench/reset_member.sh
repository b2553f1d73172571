#!/usr/bin/env bash
# reset_member.sh - steady-state (`keep`) wall time of reset-member next to the bash
# equivalent HyperShift's init container runs (bash + `etcdctl member list -w json` + a JSON
# filter, jq here), both against the same real 3-member TLS cluster with the member stopped
# (as during a pod restart), with the same certificates. Beside them, the floors: /bin/true (what
# starting any process costs here) and `reset-member --version` (reset-member's own start: the
# loader and its libraries, no TLS, no I/O).
#
# Timing: bash's $EPOCHREALTIME around each run (no clock process spawned); the four are run in
# turn, round after round, so that load from elsewhere falls on all of them alike; medians (and
# minima). CPU: user+sys of the children per run (getrusage through `times`). Goal: keep
# <= 30 ms and >= 14x faster than the bash equivalent.
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
run_keep() { rm_keep >/dev/null 2>&1; }
run_bash() { bash -c "$BASH_EQ" bash "$EPS" "$NAME" "$STATE.bash" >/dev/null 2>&1; }
SUBJECTS=(true version keep bash)

out=$(rm_keep 2>/dev/null)
case $out in *'"action":"keep"'*) ;; *) echo "expected keep, got: $out" >&2; exit 1 ;; esac
run_bash || { echo "bash equivalent failed" >&2; exit 1; }
[ "$(cat "$STATE")" = "$(cat "$STATE.bash")" ] || echo "note: states differ" >&2

# Wall: round 0 warms up (page cache, etcd's connection handling), rounds 1..RUNS count.
declare -A US
for r in $(seq 0 "$RUNS"); do
    for s in "${SUBJECTS[@]}"; do
        t0=$EPOCHREALTIME
        "run_$s" || { echo "$s failed in round $r" >&2; exit 1; }
        t1=$EPOCHREALTIME
        [ "$r" = 0 ] || US[$s]+="$((${t1/./} - ${t0/./})) "
    done
done
# stat s: "median min" in ms
stat() { tr ' ' '\n' <<<"${US[$1]}" | grep . | sort -n |
    awk '{a[NR]=$1} END {printf "%.1f %.1f", a[int((NR+1)/2)]/1000, a[1]/1000}'; }
read -r true_ms true_min <<<"$(stat true)"
read -r ver_ms ver_min <<<"$(stat version)"
read -r keep_ms keep_min <<<"$(stat keep)"
read -r bash_ms bash_min <<<"$(stat bash)"

# CPU (user+sys) per run of each: the children's rusage, summed by `times` in a subshell
cpu_ms() {
    (
        for _ in $(seq 1 "$RUNS"); do "run_$1"; done
        times >"$CLUSTER_DIR/times" # not in a pipe: a pipe's subshell has no children
        tail -1 "$CLUSTER_DIR/times" | awk -v n="$RUNS" '{
            split($1, u, /[ms]/); split($2, s, /[ms]/)
            printf "%.2f\n", ((u[1] * 60 + u[2]) + (s[1] * 60 + s[2])) * 1000 / n }'
    )
}
true_cpu=$(cpu_ms true)
ver_cpu=$(cpu_ms version)
keep_cpu=$(cpu_ms keep)
bash_cpu=$(cpu_ms bash)

# time inside reset-member's main (its log line's took_ms), median of a few runs
in_ms=$(for _ in $(seq 1 9); do
    rm_keep 2>&1 >/dev/null | grep -o '"took_ms":[0-9.]*' | cut -d: -f2
done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "inf"}'; }
net() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {if (b > f) printf "%.1f", (a - f) / (b - f); else print "inf"}'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "median (min) of $RUNS interleaved rounds; load average $load"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "/bin/true (spawn floor)" "$true_ms" "$true_min" "$true_cpu"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "reset-member --version (its start)" "$ver_ms" "$ver_min" "$ver_cpu"
printf '  %-44s %7s ms (%5s)   CPU %6s ms   (goal <= %s ms)\n' "reset-member keep" "$keep_ms" "$keep_min" "$keep_cpu" "$GOAL_MS"
printf '  %-44s %7s ms (%5s)   CPU %6s ms\n' "bash + etcdctl member list -w json + jq" "$bash_ms" "$bash_min" "$bash_cpu"
echo "time inside reset-member's main (median took_ms): $in_ms ms"
echo "ratio: $(ratio "$bash_ms" "$keep_ms")x wall (goal >= ${GOAL_RATIO}x), $(ratio "$bash_cpu" "$keep_cpu")x CPU;" \
    "net of the spawn floor: $(net "$bash_ms" "$keep_ms" "$true_ms")x wall," \
    "$(net "$bash_cpu" "$keep_cpu" "$true_cpu")x CPU"
