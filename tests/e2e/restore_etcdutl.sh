#!/usr/bin/env bash
# restore_etcdutl.sh - reset-member's restore takes the etcdutl branch when the image has
# etcdutl (etcd 3.5+ images), and the cluster restored that way comes up healthy.
#
# Only etcd 3.4 is installed here (no etcdutl), so a tests-only `etcdutl` goes first on PATH: it
# records its argv and runs 3.4's `etcdctl snapshot restore` with the same arguments. That is
# faithful because etcd 3.5's etcdutl (etcdutl/etcdutl/snapshot_command.go, v3.5.17) takes
# `snapshot restore <filename>` with --data-dir, --wal-dir, --name, --initial-cluster,
# --initial-cluster-token, --initial-advertise-peer-urls, --skip-hash-check (plus 3.5-only
# --initial-memory-map-size, --bump-revision, --mark-compacted), the 3.4 etcdctl flags of the
# same names and meanings; the wrapper refuses any other flag, so reset-member using one that
# 3.5's etcdutl lacks fails here. Scenario: 3-member cluster with keys -> snapshot -> all stopped,
# two members' data lost -> etcd-0 restores through `etcdutl` (argv checked exactly) -> etcd-1
# and etcd-2 rejoin -> 3 voters, every key on each member (serializable reads); a rerun is
# `keep` and runs no restore tool.
#
# usage: BUILD=build tests/e2e/restore_etcdutl.sh
# Prints "ok <name>" / "FAIL <name>: why" and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
TIMEOUT=${E2E_WAIT_SECONDS:-90}
NKEYS=100
LOGDIR=$WORK
SNAP=$LOGDIR/snap.db
ARGV_LOG=$LOGDIR/etcdutl.argv
RUN_RM_TOKEN=1 # run_rm passes the cluster's --initial-cluster-token

[ -x "$RM" ] || { fail setup "$RM not built"; finish; }
ETCDCTL=$(command -v etcdctl) || { fail setup "etcdctl not installed"; finish; }
if command -v etcdutl >/dev/null; then
    echo "note: a real etcdutl is installed ($(command -v etcdutl)); the wrapper shadows it"
fi

# the tests-only etcdutl
mkdir -p "$LOGDIR/bin"
cat >"$LOGDIR/bin/etcdutl" <<EOF
#!/bin/sh
# tests-only etcdutl (restore_etcdutl.sh): record argv, then etcd 3.4's etcdctl, same arguments
: >"$ARGV_LOG"
for a in "\$@"; do printf '%s\n' "\$a" >>"$ARGV_LOG"; done
[ "\$1" = snapshot ] && [ "\$2" = restore ] || { echo "etcdutl wrapper: not snapshot restore" >&2; exit 64; }
for a in "\$@"; do
    case \$a in
    --data-dir|--wal-dir|--name|--initial-cluster|--initial-cluster-token|--initial-advertise-peer-urls|--skip-hash-check) ;;
    --*) echo "etcdutl wrapper: \$a is not a flag of etcd 3.5's etcdutl snapshot restore" >&2; exit 64 ;;
    esac
done
exec "$ETCDCTL" "\$@"
EOF
chmod +x "$LOGDIR/bin/etcdutl"

wait_healthy() { CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy "$@" >/dev/null 2>&1; }

keys_on() { cluster_etcdctl "$1" get --prefix k/ --consistency=s --keys-only 2>/dev/null | grep -c '^k/'; }

# ---- a cluster with keys, a snapshot, quorum lost -----------------------------------------------
if ! cluster_up 3 >/dev/null; then
    fail cluster "tests/cluster.sh up 3 failed"
    finish
fi
{
    echo
    for k in $(seq 1 $NKEYS); do echo "put k/$k value-$k"; done
    echo
    echo
} | cluster_etcdctl 0 txn >/dev/null
if cluster_etcdctl 0 snapshot save "$SNAP" >/dev/null 2>&1; then
    ok "snapshot of $NKEYS keys ($(stat -c %s "$SNAP") bytes)"
else
    fail snapshot "etcdctl snapshot save failed"
    finish
fi
for i in 0 1 2; do cluster_stop "$i"; done
rm -rf "$(cluster_data-dir 1)" "$(cluster_data-dir 2)"

# ---- the restorer, with etcdutl first on PATH --------------------------------------------------
RM_PATH=$LOGDIR/bin:/usr/local/bin:/usr/bin:/bin
RUN_RM_ENV=(PATH="$RM_PATH") # run_rm: etcdutl first on PATH
run_rm 0 --restore-from "$SNAP"
tool="" token=""
eval "$(restore_fields "$LOGDIR/rm-0.log" tool token sha256)"
if [ "$RC" = 0 ] && [ "$(jget action <<<"$OUT")" = restore ] && [ "$tool" = etcdutl ]; then
    ok "etcd-0: action restore with tool etcdutl (logged)"
else
    fail "etcd-0 restore" "rc $RC, tool '$tool': $OUT $(tail -c 400 "$LOGDIR/rm-0.log")"
fi
# the argv etcdutl got, exactly: snapshot restore FILE + the five flags, staging beside the data
d0=$(cluster_data-dir 0)
peer0=$(cluster_peer-url 0)
{ if [ -f "$ARGV_LOG" ]; then
    mapfile -t got <"$ARGV_LOG"
    python3 - "$SNAP" "$d0" "$peer0" "$token" "$(cat "$CLUSTER_DIR/token")" "${got[@]}" <<'PY'
import os, sys
snap, d0, peer, token, old_token, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
def out(ok, msg, why=""):
    print(("ok " if ok else "FAIL ") + msg + ("" if ok else ": " + why))
out(argv[:2] == ["snapshot", "restore"], "etcdutl argv starts with snapshot restore", str(argv))
pos = [a for i, a in enumerate(argv[2:], 2) if not a.startswith("--") and not argv[i - 1].startswith("--")]
flags = {argv[i][2:]: argv[i + 1] for i in range(2, len(argv) - 1) if argv[i].startswith("--")}
out(len(pos) == 1 and os.path.exists(pos[0]) and os.path.getsize(pos[0]) == os.path.getsize(snap),
    "etcdutl got one snapshot file (the source, %d bytes)" % os.path.getsize(snap), str(pos))
out(sorted(flags) == sorted(["name", "initial-cluster", "initial-cluster-token",
                             "initial-advertise-peer-urls", "data-dir"]) and len(argv) == 13,
    "etcdutl got exactly --name --initial-cluster --initial-cluster-token "
    "--initial-advertise-peer-urls --data-dir", str(argv))
out(flags.get("name") == "etcd-0" and flags.get("initial-cluster") == "etcd-0=" + peer
    and flags.get("initial-advertise-peer-urls") == peer,
    "a one-member cluster: --name etcd-0 --initial-cluster etcd-0=%s" % peer, str(flags))
out(flags.get("initial-cluster-token") == token and token.startswith(old_token + "-restored-"),
    "a new token: %s" % token, "%s vs logged %s" % (flags.get("initial-cluster-token"), token))
dd = flags.get("data-dir", "")
out(os.path.dirname(dd) == os.path.dirname(d0) and dd != d0,
    "staging dir beside the data dir (%s)" % os.path.basename(dd), dd)
PY
else
    echo "FAIL etcdutl argv: the wrapper was not run"
fi; } >"$LOGDIR/argv.checks"
cat "$LOGDIR/argv.checks"
passed=$((passed + $(grep -c '^ok ' "$LOGDIR/argv.checks")))
failed=$((failed + $(grep -c '^FAIL ' "$LOGDIR/argv.checks")))

# ---- the restored cluster comes up; the peers rejoin -------------------------------------------
if start_from_state 0 && wait_healthy 0; then
    ok "etcd-0 (restored by etcdutl) is healthy"
else
    fail "etcd-0 start" "$(tail -c 400 "$(mdir 0)/etcd.log")"
    finish
fi
for i in 1 2; do
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        run_rm "$i" --restore-from "$SNAP"
        [ "$RC" = 0 ] || [ $SECONDS -ge $deadline ] && break
        sleep 1
    done
    id=$(jget member_id <<<"$OUT")
    if [ "$RC" != 0 ] || ! start_from_state "$i"; then
        fail "etcd-$i rejoin" "rc $RC: $OUT"
        continue
    fi
    deadline=$((SECONDS + TIMEOUT)) promoted=""
    while [ $SECONDS -lt $deadline ]; do
        if cluster_etcdctl 0 member promote "$id" >/dev/null 2>&1 ||
            cluster_etcdctl 0 member list -w json | python3 -c '
import json, sys
want = int(sys.argv[1], 16)
sys.exit(0 if any(m["ID"] == want and not m.get("isLearner") for m in json.load(sys.stdin)["members"]) else 1)' "$id"; then
            promoted=1
            break
        fi
        sleep 0.5
    done
    if [ -n "$promoted" ] && wait_healthy "$i"; then
        ok "etcd-$i rejoined the restored cluster ($(jget action <<<"$OUT")) and is a healthy voter"
    else
        fail "etcd-$i rejoin" "not promoted/healthy: $OUT"
    fi
done
voters=$(cluster_etcdctl 0 member list -w json | python3 -c '
import json, sys
print(sum(1 for m in json.load(sys.stdin)["members"] if m.get("clientURLs") and not m.get("isLearner")))')
[ "$voters" = 3 ] && ok "3 started voting members" || fail "voters" "$voters"
for i in 0 1 2; do
    n="" deadline=$((SECONDS + TIMEOUT))
    until n=$(keys_on "$i") && [ "$n" = "$NKEYS" ]; do
        [ $SECONDS -lt $deadline ] || break
        sleep 0.5
    done
    [ "$n" = "$NKEYS" ] && ok "etcd-$i serves all $NKEYS snapshot keys (serializable)" ||
        fail "etcd-$i keys" "$n of $NKEYS"
done

# ---- rerun: keep, no restore tool runs ----------------------------------------------------------
cluster_stop 0
rm -f "$ARGV_LOG"
run_rm 0 --restore-from "$SNAP"
if [ "$RC" = 0 ] && [ "$(jget action <<<"$OUT")" = keep ] && [ ! -e "$ARGV_LOG" ]; then
    ok "rerun on etcd-0: keep, etcdutl not run again"
else
    fail "rerun" "rc $RC, etcdutl ran: $([ -e "$ARGV_LOG" ] && echo yes || echo no): $OUT"
fi
start_from_state 0 && wait_healthy 0 1 2 && ok "cluster healthy after the rerun" || fail "after rerun" "not healthy"
finish
