#!/usr/bin/env bash
# snapshot.sh - benchmark (make bench only): a one-member TLS etcd holding ~800 MB (1 MB random
# values); then, alternating, `curl -o file https://agent/snapshot` vs `etcdctl snapshot save
# file`: wall time, client CPU (the agent's CPU from /proc/<pid>/stat for ours; etcdctl's
# user+sys for theirs), peak RSS (agent VmHWM, reset before each run; etcdctl's max RSS), and
# the ratios against the goals (<=0.7x wall, <=0.2x CPU, agent RSS <=16 MiB). Then with etcd
# stopped: GET /snapshot?source=disk vs cp of member/snap/db (goal <=1.2x).
#
# usage: tests/bench/snapshot.sh [--build DIR] [--mb N] [--rounds N]
set -u
cd "$(dirname "$0")/../.."
BUILD=build MB=${BENCH_SNAPSHOT_MB:-800} ROUNDS=${BENCH_SNAPSHOT_ROUNDS:-3}
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--mb N] [--rounds N]" >&2; exit 2 ;;
    esac
done
AGENT=$BUILD/etcd-agent
FILL=$BUILD/tests/bench/bench_fill
[ -x "$AGENT" ] && [ -x "$FILL" ] || { echo "bench snapshot: build first (make tests)" >&2; exit 1; }

# shellcheck source=../cluster.sh
source tests/cluster.sh
T=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-snapshot.XXXXXX")
AGENT_PID=""
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
    cluster_down
    rm -rf "$T"
}
trap cleanup EXIT

now() { date +%s.%N; }
calc() { awk "BEGIN {printf \"%.4f\", $*}"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of the process
HZ=$(getconf CLK_TCK)

echo "bench snapshot: etcd with ${MB} x 1 MB random values (this takes a while)"
ETCD_TEST_EXTRA_FLAGS="--quota-backend-bytes=$((4 * 1024 * 1024 * 1024))" cluster_up 1 >/dev/null ||
    { echo "cluster did not come up" >&2; exit 1; }
t0=$(now)
"$FILL" "$(cluster_client-url 0)" "$CLUSTER_DIR/ca.crt" "$CLUSTER_DIR/client.crt" \
    "$CLUSTER_DIR/client.key" "$MB" 1048576 k || { echo "fill failed" >&2; exit 1; }
echo "filled in $(calc "$(now) - $t0") s; db $(stat -c %s "$(cluster_data-dir 0)/member/snap/db") bytes"

read -r pp tp <<<"$(_cluster_free_ports 2)"
"$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
    --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
    --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
    --tls-cert "$CLUSTER_DIR/node.crt" --tls-key "$CLUSTER_DIR/node.key" \
    --tls-client-ca "$CLUSTER_DIR/ca.crt" --data-dir "$(cluster_data-dir 0)" \
    --spool-dir "$T" >"$T/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/livez")" != 000 ] && break
    sleep 0.1
done
URL="https://127.0.0.1:$tp/snapshot"
CURL=(curl -sS --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt"
    --key "$CLUSTER_DIR/client.key")

ours_wall=() ours_cpu=() ours_rss=() theirs_wall=() theirs_cpu=() theirs_rss=()
for r in $(seq 1 "$ROUNDS"); do
    # ours
    echo 5 >"/proc/$AGENT_PID/clear_refs" 2>/dev/null # reset VmHWM
    c0=$(ticks "$AGENT_PID")
    t0=$(now)
    "${CURL[@]}" -o "$T/ours.db" "$URL" || { echo "curl failed" >&2; exit 1; }
    t1=$(now)
    c1=$(ticks "$AGENT_PID")
    ours_wall+=("$(calc "$t1 - $t0")")
    ours_cpu+=("$(calc "($c1 - $c0) / $HZ")")
    ours_rss+=("$(awk '/^VmHWM/ {print $2}' "/proc/$AGENT_PID/status")")
    rm -f "$T/ours.db"
    # theirs
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" env ETCDCTL_API=3 etcdctl \
        --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        snapshot save "$T/theirs.db" >/dev/null 2>&1 || { echo "etcdctl failed" >&2; exit 1; }
    read -r e u s m <"$T/time"
    theirs_wall+=("$e")
    theirs_cpu+=("$(calc "$u + $s")")
    theirs_rss+=("$m")
    rm -f "$T/theirs.db"
    printf 'round %d: agent %.2fs wall %.2fs cpu %d KiB | etcdctl %.2fs wall %.2fs cpu %d KiB\n' "$r" \
        "${ours_wall[-1]}" "${ours_cpu[-1]}" "${ours_rss[-1]}" "$e" "${theirs_cpu[-1]}" "$m"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
ow=$(median "${ours_wall[@]}") oc=$(median "${ours_cpu[@]}") orss=$(max "${ours_rss[@]}")
tw=$(median "${theirs_wall[@]}") tc=$(median "${theirs_cpu[@]}") trss=$(max "${theirs_rss[@]}")
echo "snapshot over HTTPS (median of $ROUNDS):"
printf '  wall: agent %.2f s, etcdctl %.2f s, ratio %.2f (goal <= 0.7)\n' "$ow" "$tw" "$(calc "$ow / $tw")"
printf '  cpu:  agent %.2f s, etcdctl %.2f s, ratio %.2f (goal <= 0.2)\n' "$oc" "$tc" "$(calc "$oc / $tc")"
printf '  peak RSS: agent %d KiB (goal <= 16384), etcdctl %d KiB\n' "$orss" "$trss"
grep 'snapshot upstream done' "$T/agent.log" | tail -1

# ---- disk source vs cp -----------------------------------------------------------------------
cluster_stop 0
db="$(cluster_data-dir 0)/member/snap/db"
disk_wall=() cp_wall=()
for r in $(seq 1 "$ROUNDS"); do
    t0=$(now)
    "${CURL[@]}" -o "$T/disk.db" "$URL?source=disk" || { echo "disk source failed" >&2; exit 1; }
    t1=$(now)
    disk_wall+=("$(calc "$t1 - $t0")")
    rm -f "$T/disk.db"
    t0=$(now)
    cp "$db" "$T/cp.db"
    t1=$(now)
    cp_wall+=("$(calc "$t1 - $t0")")
    rm -f "$T/cp.db"
done
dw=$(median "${disk_wall[@]}") cw=$(median "${cp_wall[@]}")
printf 'disk source: agent %.2f s, cp %.2f s, ratio %.2f (goal <= 1.2; page cache warm for both)\n' \
    "$dw" "$cw" "$(calc "$dw / $cw")"
