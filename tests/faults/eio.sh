#!/usr/bin/env bash
# eio.sh - fault row "EIO on read": reset-member inspects a data dir whose files fail to read.
# No dm-error or FUSE here, so eio_shim.c (LD_PRELOAD) stands in: read/pread of matching
# files fail with EIO, and a matching file is truncated right after it is mapped, so touching
# the mapping raises SIGBUS as an unreadable page does. For the WAL (mapped), the bbolt db
# (pread) and a .snap (mapped): reset-member must exit with a clear error naming the file
# (refuse, exit 3: a read error is not corruption, so it must not reset) instead of crashing
# or calling the data corrupt, touch nothing (byte-identical), and with the disk healthy again
# the member keeps its data and serves every key. Prints ok/FAIL, ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
need_bins "$RM"
SHIM=$WORK/eio_shim.so
cc -shared -fPIC -O1 -o "$SHIM" "$ROOT/tests/faults/eio_shim.c" -ldl 2>"$WORK/cc.log" ||
    { fail "build eio_shim" "$(cat "$WORK/cc.log")"; finish; }

cluster_up 3 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
check "keys written" put_keys eio 20
# a .snap file: etcd writes one every --snapshot-count entries; force it with a small count
cluster_stop 1
ETCD_TEST_EXTRA_FLAGS="--snapshot-count 10" cluster_start 1 existing && quiet_jobs
cluster_wait-healthy 1 >/dev/null 2>&1
put_keys snapfill 15 >/dev/null
cluster_stop 1
d=$(cluster_data-dir 1)
ls "$d"/member/snap/*.snap >/dev/null 2>&1 || fail "setup: no .snap file written"

# one run per file kind; the matched file is a scratch copy (the shim truncates it)
for target in .wal snap/db .snap; do
    rm -rf "$WORK/copy" && cp -a "$d" "$WORK/copy" || { fail "copy"; continue; }
    before=$(tree_sum "$WORK/copy")
    m=$CLUSTER_DIR/members/1
    rm -f "$m/state"
    # (an ASan build wants its runtime first in the library list; the shim goes before it)
    OUT=$(EIO_MATCH=$target LD_PRELOAD=$SHIM ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 env -u ETCDCTL_ENDPOINTS "$RM" --name etcd-1 \
        --data-dir "$WORK/copy" --peer-url "$(cluster_peer-url 1)" \
        --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster")" \
        --endpoints "$(cat "$CLUSTER_DIR/endpoints")" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --state-file "$m/state" --timeout 5s 2>"$WORK/err")
    RC=$?
    check "EIO on $target: no crash, refused (rc $RC, action $(action))" [ "$RC" = 3 ] && [ "$(action)" = refuse ]
    check "EIO on $target: the error names the read error" grep -q 'read error: Input/output error' "$WORK/err"
    check "EIO on $target: no state file written" [ ! -e "$m/state" ]
    check "EIO on $target: nothing moved aside" [ -z "$(ls -d "$WORK"/copy.reset-* 2>/dev/null)" ]
    # the shim truncated the mapped file itself (that is the fault); everything else identical
    [ "$target" = snap/db ] && check "EIO on $target: data byte-identical" [ "$(tree_sum "$WORK/copy")" = "$before" ]
done

# The disk is healthy again: the real data dir was never touched; keep, and nothing lost.
run_rm 1
check "healthy disk: keep ($(action))" [ "$(action)" = keep ] && [ "$RC" = 0 ]
cluster_start 1 existing && quiet_jobs
check "etcd-1 healthy" cluster_wait-healthy 1
check "etcd-1 serves every key" until_true 30 keys_on 1 eio 20
finish
