#!/usr/bin/env bash
# restore_bump.sh - reset-member's revision bump on restore, against the etcd in PATH (tests/run.sh
# runs it once per etcd build). With an etcdutl whose `snapshot restore --help` lists
# --bump-revision and --mark-compacted (etcd 3.5+), the restore gets `--bump-revision N
# --mark-compacted` (default N = 1,000,000,000; --restore-bump-revision / ETCD_RESTORE_BUMP_REVISION;
# 0 = off): the restored member's revision is >= the snapshot's + N and a read at the snapshot's
# revision says "compacted", so watchers re-list. With etcd 3.4 (etcdctl only) the restore runs
# without, and one JSON warning line says so. The decision and the flags are in the JSON line.
# Scenario on a 1-member cluster: keys -> snapshot at revision R -> restore (default N) -> start,
# check; restore again with N = 5000 from the env, check; again with 0, check.
#
# usage: BUILD=build tests/e2e/restore_bump.sh   Prints ok/FAIL lines, "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
TIMEOUT=${E2E_WAIT_SECONDS:-90}
NKEYS=20
DEFAULT_BUMP=1000000000
RUN_RM_TOKEN=1 # run_rm passes the cluster's --initial-cluster-token

need_bins "$RM"
ver=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
# what the restore tool in PATH can do decides what we expect (reset-member takes etcdutl if in
# PATH, else etcdctl); read from the tool itself, not from reset-member
tool=$(command -v etcdutl || command -v etcdctl)
if ETCDCTL_API=3 "$tool" snapshot restore --help 2>&1 | grep -qE '^ +--bump-revision[ =]'; then
    expect=applied
else
    expect=unsupported
fi
echo "etcd $ver, restore tool $tool: expecting bump $expect"

# the warning lines about the bump in reset-member's stderr (JSON lines, level warn)
warn_lines() {
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("level") == "warn" and "--bump-revision" in j.get("msg", ""):
        n += 1
print(n)' "$WORK/rm-0.log"
}
revision() {
    cluster_etcdctl 0 endpoint status -w json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'
}
wait_healthy() { CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy "$@" >/dev/null 2>&1; }
keys_served() { cluster_etcdctl 0 get --prefix k/ --consistency=s --keys-only 2>/dev/null | grep -c '^k/'; }

# ---- a member with keys, a snapshot at revision R -----------------------------------------------
if ! cluster_up 1 >"$WORK/up.log" 2>&1; then
    fail cluster "tests/cluster.sh up 1 failed: $(tail -3 "$WORK/up.log")"
    finish
fi
ops=""
for k in $(seq 1 $NKEYS); do ops+="put k/$k v-$k"$'\n'; done
cluster_etcdctl 0 txn <<<$'\n'"$ops"$'\n' >/dev/null
for k in 1 2 3; do cluster_etcdctl 0 put k/1 "v-1-$k" >/dev/null; done # a few more revisions
R=$(revision)
if cluster_etcdctl 0 snapshot save "$WORK/snap.db" >/dev/null 2>&1 && [ -n "$R" ]; then
    ok "snapshot of $NKEYS keys at revision $R"
else
    fail snapshot "etcdctl snapshot save failed (revision '$R')"
    finish
fi

# restore_with NAME SOURCE [flags]: stop etcd-0, restore it from SOURCE, start it; sets bump,
# bump_revision, bump_flags, REV (the revision after the start)
restore_with() {
    local name=$1 src=$2
    shift 2
    cluster_stop 0
    run_rm 0 --restore-from "$src" "$@"
    bump="" bump_revision="" bump_flags="" REV=""
    eval "$(restore_fields "$WORK/rm-0.log" bump bump_revision bump_flags)"
    if [ "$RC" != 0 ] || [ "$(action)" != restore ]; then
        fail "$name: restore" "rc $RC: $OUT $(tail -c 400 "$WORK/rm-0.log")"
        return 1
    fi
    if ! start_from_state 0 || ! wait_healthy 0; then
        fail "$name: start" "$(tail -c 400 "$(mdir 0)/etcd.log")"
        return 1
    fi
    REV=$(revision)
    local n
    n=$(keys_served)
    [ "$n" = "$NKEYS" ] && ok "$name: restored, etcd-0 serves all $NKEYS keys at revision $REV" ||
        fail "$name: keys" "$n of $NKEYS"
}

# ---- 1. the default: N = 1,000,000,000 ----------------------------------------------------------
if restore_with default "$WORK/snap.db"; then
    if [ "$expect" = applied ]; then
        [ "$bump" = applied ] && [ "$bump_revision" = "$DEFAULT_BUMP" ] &&
            [ "$bump_flags" = "--bump-revision $DEFAULT_BUMP --mark-compacted" ] &&
            ok "default: the JSON line says bump applied, flags '$bump_flags'" ||
            fail "default: JSON line" "bump '$bump' revision '$bump_revision' flags '$bump_flags': $OUT"
        [ "$REV" -ge $((R + DEFAULT_BUMP)) ] && ok "default: revision $REV >= $R + $DEFAULT_BUMP" ||
            fail "default: revision" "$REV < $R + $DEFAULT_BUMP"
        got=$(cluster_etcdctl 0 get k/1 --rev="$R" 2>&1)
        grep -q "required revision has been compacted" <<<"$got" &&
            ok "default: a read at the snapshot's revision $R says compacted" ||
            fail "default: read at $R" "$got"
        [ "$(warn_lines)" = 0 ] && ok "default: no bump warning" || fail "default: warning" "$(cat "$WORK/rm-0.log")"
    else
        [ "$bump" = unsupported ] && [ "$bump_revision" = "$DEFAULT_BUMP" ] && [ "$bump_flags" = none ] &&
            ok "default: the JSON line says bump unsupported, no flags" ||
            fail "default: JSON line" "bump '$bump' revision '$bump_revision' flags '$bump_flags': $OUT"
        [ "$(warn_lines)" = 1 ] && ok "default: one JSON warning line says the tool lacks --bump-revision" ||
            fail "default: warning" "$(warn_lines) lines: $(cat "$WORK/rm-0.log")"
        [ "$REV" -lt $((R + DEFAULT_BUMP)) ] && ok "default: restored without a bump (revision $REV)" ||
            fail "default: revision" "$REV"
    fi
fi

# ---- 2. N from the env (another source, so the marker asks for a new restore) -------------------
cp "$WORK/snap.db" "$WORK/snap2.db"
RUN_RM_ENV=(ETCD_RESTORE_BUMP_REVISION=5000)
if restore_with env-5000 "$WORK/snap2.db"; then
    if [ "$expect" = applied ]; then
        [ "$bump" = applied ] && [ "$bump_flags" = "--bump-revision 5000 --mark-compacted" ] &&
            [ "$REV" -ge $((R + 5000)) ] && [ "$REV" -lt $((R + DEFAULT_BUMP)) ] &&
            ok "env-5000: ETCD_RESTORE_BUMP_REVISION=5000 applied, revision $REV in [$R + 5000, $R + $DEFAULT_BUMP)" ||
            fail "env-5000" "bump '$bump' flags '$bump_flags' revision $REV (R $R)"
    else
        [ "$bump" = unsupported ] && [ "$bump_revision" = 5000 ] && [ "$(warn_lines)" = 1 ] &&
            ok "env-5000: unsupported, warned once" || fail "env-5000" "bump '$bump' revision '$bump_revision': $OUT"
    fi
fi
RUN_RM_ENV=()

# ---- 3. --restore-bump-revision 0: off, whatever the tool ----------------------------------------
cp "$WORK/snap.db" "$WORK/snap3.db"
if restore_with off "$WORK/snap3.db" --restore-bump-revision 0; then
    [ "$bump" = off ] && [ "$bump_revision" = 0 ] && [ "$bump_flags" = none ] && [ "$(warn_lines)" = 0 ] &&
        [ "$REV" -lt $((R + 5000)) ] &&
        ok "off: --restore-bump-revision 0: no bump flags, no warning, revision $REV" ||
        fail "off" "bump '$bump' flags '$bump_flags' warnings $(warn_lines) revision $REV: $OUT"
    got=$(cluster_etcdctl 0 get k/2 --rev="$R" --print-value-only 2>&1)
    [ "$got" = v-2 ] && ok "off: a read at revision $R still answers" || fail "off: read at $R" "$got"
fi
finish
