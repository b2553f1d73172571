#!/usr/bin/env bash
# snapshot.sh - benchmark (make bench only): a one-member TLS etcd holding ~800 MB (1 MB random
# values); then, alternating in each round:
#   - `curl -o file https://agent/snapshot` (HTTP/2): wall, the agent's CPU (/proc/<pid>/stat),
#     its peak RSS (VmHWM, reset before each run) and etcd's send time as the agent saw it
#     (log field upstream_ms);
#   - `etcdctl snapshot save file`: wall, its user+sys CPU, max RSS;
#   - the floor: bench_snapfloor (common/etcd with 16 MiB windows: receive, verify the sha256,
#     drop), i.e. etcd's send path plus the least any client must do;
# and prints medians and the ratios against the goals (<=0.7x wall, <=0.2x CPU, RSS <=16 MiB).
# Then, etcd stopped and the db in the page cache (warm, for every contender alike):
# GET /snapshot?source=disk over plain HTTP/1.1, HTTPS HTTP/1.1 and HTTPS HTTP/2 against
# `cp` of member/snap/db (goal <=1.2x), with the floors `openssl dgst -sha256` (the agent must
# hash every byte for the trailer; one core) and `sha256sum`.
#
# usage: tests/bench/snapshot.sh [--build DIR] [--mb N] [--rounds N]
#   env BENCH_SNAPSHOT_MB (default 800; e.g. 100 for a quick run), BENCH_SNAPSHOT_ROUNDS (3)
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
FLOOR=$BUILD/tests/bench/bench_snapfloor
[ -x "$AGENT" ] && [ -x "$FILL" ] && [ -x "$FLOOR" ] ||
    { echo "bench snapshot: build first (make tests)" >&2; exit 1; }

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

# shellcheck source=lib.bash
source tests/bench/lib.bash
T_START=$(now)

echo "bench snapshot: etcd with ${MB} x 1 MB random values; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ETCD_TEST_EXTRA_FLAGS="--quota-backend-bytes=$((4 * 1024 * 1024 * 1024))" cluster_up 1 >/dev/null ||
    { echo "cluster did not come up" >&2; exit 1; }
t0=$(now)
"$FILL" "$(cluster_client-url 0)" "$CLUSTER_DIR/ca.crt" "$CLUSTER_DIR/client.crt" \
    "$CLUSTER_DIR/client.key" "$MB" 1048576 k || { echo "fill failed" >&2; exit 1; }
db="$(cluster_data-dir 0)/member/snap/db"
echo "filled in $(calc "$(now) - $t0") s; db $(stat -c %s "$db") bytes"

read -r pp tp <<<"$(_cluster_free_ports 2)"
# --allow-insecure-snapshot: the plain-HTTP disk-source figure below (loopback only)
"$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
    --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
    --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
    --tls-cert "$CLUSTER_DIR/node.crt" --tls-key "$CLUSTER_DIR/node.key" \
    --tls-client-ca "$CLUSTER_DIR/ca.crt" --data-dir "$(cluster_data-dir 0)" \
    --spool-dir "$T" --allow-insecure-snapshot >"$T/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/livez")" != 000 ] && break
    sleep 0.1
done
URL="https://127.0.0.1:$tp/snapshot"
CURL=(curl -sS --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt"
    --key "$CLUSTER_DIR/client.key")
export ETCD_TEST_ENDPOINTS=$(cluster_client-url 0) ETCD_TEST_CACERT=$CLUSTER_DIR/ca.crt \
    ETCD_TEST_CERT=$CLUSTER_DIR/client.crt ETCD_TEST_KEY=$CLUSTER_DIR/client.key

ours_wall=() ours_cpu=() ours_rss=() ours_up=() theirs_wall=() theirs_cpu=() theirs_rss=()
floor_wall=() floor_cpu=()
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
    sleep 0.2 # the log line follows the response
    up=$(grep '"snapshot sent"' "$T/agent.log" | tail -1 | grep -o '"upstream_ms":[0-9]*' | cut -d: -f2)
    ours_up+=("$(calc "${up:-0} / 1000")")
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
    # floor
    fl=$("$FLOOR") || { echo "bench_snapfloor failed" >&2; exit 1; }
    fw=$(echo "$fl" | sed -n 's/.*wall_ms=\([0-9.]*\).*/\1/p')
    fc=$(echo "$fl" | sed -n 's/.*cpu_ms=\([0-9.]*\).*/\1/p')
    floor_wall+=("$(calc "$fw / 1000")")
    floor_cpu+=("$(calc "$fc / 1000")")
    printf 'round %d: agent %.2fs wall (etcd send %.2fs) %.2fs cpu %d KiB | etcdctl %.2fs wall %.2fs cpu %d KiB | floor %.2fs wall %.2fs cpu\n' \
        "$r" "${ours_wall[-1]}" "${ours_up[-1]}" "${ours_cpu[-1]}" "${ours_rss[-1]}" "$e" \
        "${theirs_cpu[-1]}" "$m" "${floor_wall[-1]}" "${floor_cpu[-1]}"
done
ow=$(median "${ours_wall[@]}") oc=$(median "${ours_cpu[@]}") orss=$(max "${ours_rss[@]}")
ou=$(median "${ours_up[@]}")
tw=$(median "${theirs_wall[@]}") tc=$(median "${theirs_cpu[@]}") trss=$(max "${theirs_rss[@]}")
fw=$(median "${floor_wall[@]}") fc=$(median "${floor_cpu[@]}")
echo "snapshot over HTTPS (median of $ROUNDS; agent: curl -o file, HTTP/2):"
printf '  wall: agent %.2f s, etcdctl %.2f s, ratio %.2f (goal <= 0.7)\n' "$ow" "$tw" "$(calc "$ow / $tw")"
printf '        floor: etcd send as the agent saw it %.2f s; bench_snapfloor (receive+verify, drop) %.2f s = %.2fx etcdctl\n' \
    "$ou" "$fw" "$(calc "$fw / $tw")"
printf '  cpu:  agent %.2f s, etcdctl %.2f s, ratio %.2f (goal <= 0.2)\n' "$oc" "$tc" "$(calc "$oc / $tc")"
printf '        floor: bench_snapfloor %.2f s (TLS in + sha256 only) = %.2fx etcdctl\n' "$fc" "$(calc "$fc / $tc")"
printf '  peak RSS: agent %d KiB (goal <= 16384), etcdctl %d KiB\n' "$orss" "$trss"

# ---- disk source vs cp -----------------------------------------------------------------------
cluster_stop 0
cat "$db" >/dev/null # page cache warm for every contender
size=$(stat -c %s "$db")
dsk_h1=() dsk_h1s=() dsk_h2s=() cpu_h1=() cpu_h1s=() cpu_h2s=() cp_wall=() dgst_wall=() sum_wall=()
timed() { # var cpuvar cmd...: wall seconds into var, agent CPU into cpuvar
    local -n _w=$1 _c=$2
    shift 2
    local c0 t0 t1
    c0=$(ticks "$AGENT_PID")
    t0=$(now)
    "$@" || { echo "disk source: $* failed" >&2; exit 1; }
    t1=$(now)
    _w+=("$(calc "$t1 - $t0")")
    _c+=("$(calc "($(ticks "$AGENT_PID") - $c0) / $HZ")")
}
for r in $(seq 1 "$ROUNDS"); do
    timed dsk_h1 cpu_h1 curl -sS -o "$T/disk.db" "http://127.0.0.1:$pp/snapshot?source=disk"
    [ "$(stat -c %s "$T/disk.db")" = $((size + 32)) ] || { echo "disk source: short file" >&2; exit 1; }
    rm -f "$T/disk.db"
    timed dsk_h1s cpu_h1s "${CURL[@]}" --http1.1 -o "$T/disk.db" "$URL?source=disk"
    rm -f "$T/disk.db"
    timed dsk_h2s cpu_h2s "${CURL[@]}" -o "$T/disk.db" "$URL?source=disk"
    rm -f "$T/disk.db"
    t0=$(now)
    cp "$db" "$T/cp.db"
    cp_wall+=("$(calc "$(now) - $t0")")
    rm -f "$T/cp.db"
    t0=$(now)
    openssl dgst -sha256 "$db" >/dev/null
    dgst_wall+=("$(calc "$(now) - $t0")")
    if [ "$r" = 1 ]; then # coreutils' sha256sum is slow (no SHA-NI): once is enough
        t0=$(now)
        sha256sum "$db" >/dev/null
        sum_wall+=("$(calc "$(now) - $t0")")
    fi
    printf 'round %d: disk source http/1.1 %.2fs, https/1.1 %.2fs, https h2 %.2fs | cp %.2fs | openssl sha256 %.2fs\n' \
        "$r" "${dsk_h1[-1]}" "${dsk_h1s[-1]}" "${dsk_h2s[-1]}" "${cp_wall[-1]}" "${dgst_wall[-1]}"
done
cw=$(median "${cp_wall[@]}")
echo "disk source, $size bytes, page cache warm (median of $ROUNDS; curl -o file on the same disk as cp's copy):"
for v in h1:"plain HTTP/1.1" h1s:"HTTPS HTTP/1.1" h2s:"HTTPS HTTP/2"; do
    k=${v%%:*} name=${v#*:}
    declare -n w=dsk_$k c=cpu_$k
    m=$(median "${w[@]}")
    printf '  %-15s %.2f s (agent CPU %.2f s), ratio to cp %.2f (goal <= 1.2)\n' "$name" "$m" \
        "$(median "${c[@]}")" "$(calc "$m / $cw")"
    unset -n w c
done
dw=$(median "${dgst_wall[@]}")
printf '  cp %.2f s; floor: openssl dgst -sha256 %.2f s = %.2fx cp (the trailer needs every byte hashed), sha256sum %.2f s\n' \
    "$cw" "$dw" "$(calc "$dw / $cw")" "$(median "${sum_wall[@]}")"
echo "bench snapshot took $(calc "$(now) - $T_START") s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
