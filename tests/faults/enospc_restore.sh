#!/usr/bin/env bash
# enospc_restore.sh - fault row "ENOSPC on the data volume" during a restore download: the data
# volume is a small tmpfs (root) holding earlier files (a moved-aside data dir, an operator's
# file); `reset-member --restore-from URL` of a snapshot larger than the free space must fail
# with a clear error (exit non-zero, "No space left on device" in its log), leave the earlier
# files byte-identical, put no partial data dir in place; the same when the download fits but
# etcdctl snapshot restore runs out (etcd preallocates a 64 MB WAL); once the volume has room
# the rerun restores, and the restore marker carries the snapshot's digest. The snapshot dir's ENOSPC is
# tests/e2e/snapshot.sh's. Prints ok/FAIL per check, ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
FILL=$BUILD/tests/bench/bench_fill
need_bins "$RM" "$FILL"
[ "$(id -u)" = 0 ] || skip_all "needs root to mount a tmpfs"
"$RM" --help 2>&1 | grep -q -- --restore-from || skip_all "reset-member has no --restore-from"

cluster_up 1 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
C=$CLUSTER_DIR
"$FILL" "$(cluster_client-url 0)" "$C/ca.crt" "$C/client.crt" "$C/client.key" 96 65536 k \
    >"$WORK/fill.log" 2>&1 || { fail "fill" "$(tail -2 "$WORK/fill.log")"; finish; }
mkdir -p "$WORK/srv"
cluster_etcdctl 0 snapshot save "$WORK/srv/snap.db" >/dev/null 2>&1 || { fail "snapshot save"; finish; }
snap_kb=$(($(stat -c %s "$WORK/srv/snap.db") / 1024))
port=$(free_port)
(cd "$WORK/srv" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
srv=$!
EXTRA_CLEANUP+=("kill $srv")
until_true 20 curl -sf -o /dev/null "http://127.0.0.1:$port/snap.db" || fail "http server"

# The volume: room for the earlier files and half the snapshot.
V=$WORK/vol
mkdir -p "$V"
size_kb=$((snap_kb / 2 + 1024))
mount -t tmpfs -o size=${size_kb}k tmpfs "$V" || skip_all "cannot mount a tmpfs here"
EXTRA_CLEANUP+=("umount -l $V")
mkdir -p "$V/data.reset-20260101T000000Z/member"
head -c 300000 /dev/urandom >"$V/data.reset-20260101T000000Z/member/old"
echo "operator notes" >"$V/notes.txt"
before=$(tree_sum "$V")

read -r sp sc <<<"$(_cluster_free_ports 2)"
rr() { # reset-member restoring into $V/data (a scratch one-member cluster; no cluster reachable)
    OUT=$("$RM" --name etcd-x --data-dir "$V/data" --peer-url "https://127.0.0.1:$sp" \
        --initial-cluster "etcd-x=https://127.0.0.1:$sp" --endpoints "https://127.0.0.1:$sc" \
        --cacert "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key" \
        --state-file "$WORK/state" --timeout 2s --restore-from "http://127.0.0.1:$port/snap.db" \
        2>"$WORK/rr.err")
    RC=$?
}
rr
echo "   volume ${size_kb} KiB, snapshot ${snap_kb} KiB: rc $RC $OUT"
check "ENOSPC: reset-member fails (rc $RC)" [ "$RC" != 0 ] && [ "$RC" -lt 128 ]
check "ENOSPC: the error says no space" grep -qi 'no space left' "$WORK/rr.err"
check "ENOSPC: no state file written" [ ! -e "$WORK/state" ]
check "ENOSPC: no data dir put in place" eval '[ ! -e "$V/data/member/snap/db" ]'
left=$(ls -d "$V"/data.restore-* 2>/dev/null | tr '\n' ' ')
check "ENOSPC: no download or staging dir left behind${left:+ ($left)}" [ -z "$left" ]
rm -rf "$V"/data.restore-* 2>/dev/null
check "ENOSPC: earlier files byte-identical" [ "$(tree_sum "$V")" = "$before" ]

# Room for the download but not for etcd's 64 MB preallocated WAL: the restore step fails.
mount -o remount,size=$((snap_kb * 3 + 4096))k "$V" || fail "remount"
rr
check "ENOSPC in etcdctl snapshot restore: fails (rc $RC)" [ "$RC" != 0 ] && [ "$RC" -lt 128 ]
check "ENOSPC in etcdctl snapshot restore: the error says no space" grep -qi 'no space left' "$WORK/rr.err"
check "ENOSPC in etcdctl snapshot restore: no data dir put in place" eval '[ ! -e "$V/data/member/snap/db" ]'
check "ENOSPC in etcdctl snapshot restore: no state file written" [ ! -e "$WORK/state" ]
mkdir -p "$WORK/left"
mv "$V"/data.restore-* "$WORK/left/" 2>/dev/null
check "ENOSPC in etcdctl snapshot restore: earlier files byte-identical" [ "$(tree_sum "$V")" = "$before" ]
mv "$WORK"/left/* "$V/" 2>/dev/null # what a rerun finds

mount -o remount,size=$((snap_kb * 4 + 200 * 1024))k "$V" || fail "remount"
rr
check "room again: the rerun restores (rc $RC)" [ "$RC" = 0 ]
sha=$(tail -c 32 "$WORK/srv/snap.db" | od -An -tx1 | tr -d ' \n')
check "room again: the restore marker carries the snapshot's digest" grep -q "^sha256=$sha\$" "$V/data.restore-marker"
check "room again: a db is in place" [ -s "$V/data/member/snap/db" ]
check "room again: earlier files still there" eval '[ -f "$V/notes.txt" ] && [ -f "$V/data.reset-20260101T000000Z/member/old" ]'
finish
