#!/usr/bin/env bash
# reset_member.sh - steady-state (`keep`) wall time of reset-member next to the bash
# equivalent HyperShift's init container runs (bash + `etcdctl member list -w json` + a JSON
# filter, jq here), both against the same real 3-member TLS cluster with the member stopped
# (as during a pod restart). Prints medians and the ratio; goal: <= 30 ms and >= 14x faster.
#
# usage: BUILD=build tests/bench/reset_member.sh      (BENCH_RUNS=N, default 20)
set -u
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

run_rm() {
    "$RM" --name "$NAME" --data-dir "$DATA" --peer-url "$PEER" --endpoints "$EPS" \
        --cacert "$CA" --cert "$CERT" --key "$KEY" --state-file "$STATE" >/dev/null 2>&1
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
run_true() { /bin/true; }
run_bash() { bash -c "$BASH_EQ" bash "$EPS" "$NAME" "$STATE.bash"; }

# median_ms fn: run fn RUNS times (after one warm-up), print the median wall time in ms.
median_ms() {
    local fn=$1 s e n times=()
    "$fn" || { echo "FAIL"; return 1; }
    for n in $(seq 1 "$RUNS"); do
        s=$(date +%s%N)
        "$fn" || { echo "FAIL"; return 1; }
        e=$(date +%s%N)
        times+=($(((e - s) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)]/1000}'
}

# cpu_ms fn: user+sys CPU per run (children's times, measured in a subshell), in ms.
cpu_ms() {
    (
        for n in $(seq 1 "$RUNS"); do "$1" >/dev/null 2>&1; done
        times >"$CLUSTER_DIR/times" # not in a pipe: a pipe's subshell has no children
        tail -1 "$CLUSTER_DIR/times" | awk -v n="$RUNS" '{
            split($1, u, /[ms]/); split($2, s, /[ms]/)
            printf "%.1f\n", ((u[1] * 60 + u[2]) + (s[1] * 60 + s[2])) * 1000 / n }'
    )
}

out=$("$RM" --name "$NAME" --data-dir "$DATA" --peer-url "$PEER" --endpoints "$EPS" \
    --cacert "$CA" --cert "$CERT" --key "$KEY" --state-file "$STATE" 2>/dev/null)
case $out in *'"action":"keep"'*) ;; *) echo "expected keep, got: $out" >&2; exit 1 ;; esac

floor_ms=$(median_ms run_true)
rm_ms=$(median_ms run_rm) || { echo "reset-member failed" >&2; exit 1; }
# time inside reset-member's main (its log line's took_ms), median of a few runs
in_ms=$(for n in $(seq 1 9); do
    "$RM" --name "$NAME" --data-dir "$DATA" --peer-url "$PEER" --endpoints "$EPS" \
        --cacert "$CA" --cert "$CERT" --key "$KEY" --state-file "$STATE" 2>&1 >/dev/null |
        grep -o '"took_ms":[0-9.]*' | cut -d: -f2
done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')
bash_ms=$(median_ms run_bash) || { echo "bash equivalent failed" >&2; exit 1; }
rm_cpu=$(cpu_ms run_rm)
bash_cpu=$(cpu_ms run_bash)
[ "$(cat "$STATE")" = "$(cat "$STATE.bash")" ] || echo "note: states differ" >&2
ratio=$(awk -v a="$bash_ms" -v b="$rm_ms" 'BEGIN {printf "%.1f", a / b}')
load=$(cut -d' ' -f1 /proc/loadavg)
echo "reset-member keep (median of $RUNS): $rm_ms ms   (goal <= $GOAL_MS ms)"
echo "bash + etcdctl member list -w json + jq (median of $RUNS): $bash_ms ms"
net=$(awk -v a="$bash_ms" -v b="$rm_ms" -v f="$floor_ms" 'BEGIN {printf "%.1f", (a - f) / (b - f)}')
echo "ratio: ${ratio}x   (goal >= ${GOAL_RATIO}x)   load average: $load"
echo "spawn floor (/bin/true from bash, median): $floor_ms ms; ratio net of it: ${net}x;" \
    "time inside reset-member's main (median took_ms): $in_ms ms"
echo "CPU per run (user+sys): reset-member $rm_cpu ms, bash equivalent $bash_cpu ms" \
    "($(awk -v a="$bash_cpu" -v b="$rm_cpu" 'BEGIN {printf "%.1f", a / b}')x)"
