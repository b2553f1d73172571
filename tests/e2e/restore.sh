#!/usr/bin/env bash
# restore.sh - quorum-loss restore end to end (issue 6) against a real 3-member TLS cluster:
# keys -> snapshot -> two members' data destroyed (quorum lost) -> reset-member refuses without a
# restore request (data byte-identical) and rejects bad snapshots (nothing touched) -> stop all ->
# reset-member --restore-from on all three (etcd-0 restores as a one-member cluster, the others
# rejoin with MemberAdd) -> 3 voting members, every snapshot key on EACH member (serializable
# reads), member IDs consistent -> reruns keep. Then restores from an http URL and from an https
# URL that requires a client certificate (as an agent's /snapshot does), and kill -9 at
# every restore step followed by a rerun.
#
# The snapshot is taken with `etcdctl snapshot save` (same file format as the agent's /snapshot:
# db + 32-byte sha256), or through build/etcd-agent's /snapshot over mTLS when the agent has it.
# usage: BUILD=build tests/e2e/restore.sh [scenario...]     (default: all, in order)
# Prints "ok <name>" / "FAIL <name>: why" and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
TIMEOUT=${E2E_WAIT_SECONDS:-90}
NKEYS=300
PIDS=()
LOGDIR=$WORK
SNAP=$LOGDIR/snap.db
RUN_RM_TOKEN=1 # run_rm passes the cluster's --initial-cluster-token
at_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done'
need_bins "$RM"

corrupt_db() { # both bbolt meta pages
    local db
    db="$(cluster_data-dir "$1")/member/snap/db"
    printf 'garbage' | dd of="$db" bs=1 seek=16 conv=notrunc status=none
    printf 'garbage' | dd of="$db" bs=1 seek=4112 conv=notrunc status=none
}

members_json() { cluster_etcdctl "$1" member list -w json; }

# promote_new i: after etcd-i started as a learner, promote it (the agent's job in production).
promote_new() {
    local i=$1 id deadline=$((SECONDS + TIMEOUT))
    id=$(jget member_id <<<"$OUT")
    [ -n "$id" ] || die "etcd-$i: no member_id: $OUT" || return 1
    while [ $SECONDS -lt $deadline ]; do
        cluster_etcdctl 0 member promote "$id" >/dev/null 2>&1 && return 0
        members_json 0 2>/dev/null | python3 -c '
import json, sys
want = int(sys.argv[1], 16)
sys.exit(0 if any(m["ID"] == want and not m.get("isLearner") for m in json.load(sys.stdin)["members"]) else 1)' "$id" && return 0
        sleep 0.5
    done
    die "etcd-$i ($id) not promoted within ${TIMEOUT}s"
}

wait_healthy() { CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy "$@" >/dev/null 2>&1 || die "etcd-$* not healthy"; }

# run_rm_until i action [flags]: a peer's init container is retried by kubelet until the cluster
# lets it in (another learner pending, the restored member still electing itself).
run_rm_until() {
    local i=$1 want=$2 deadline=$((SECONDS + TIMEOUT))
    shift 2
    while :; do
        run_rm "$i" "$@"
        [ "$RC" = 0 ] && break
        [ $SECONDS -lt $deadline ] || break
        sleep 1
    done
    expect_action "$i" "$want"
}

# sorted snapshot keys as member i serves them from its own store
keys_on() { cluster_etcdctl "$1" get --prefix k/ --consistency=s --keys-only 2>/dev/null | grep '^k/' | sort; }

# ---- setup: keys, snapshot, a key written after it ------------------------------------------

write_keys() {
    local b k
    for b in 0 1 2; do
        { echo; for k in $(seq $((b * 100 + 1)) $((b * 100 + 100))); do echo "put k/$k value-$k"; done; echo; echo; } |
            cluster_etcdctl 0 txn >/dev/null || return 1
    done
}

take_snapshot() {
    local port
    if [ -x "$AGENT" ] && "$AGENT" --help 2>&1 | grep -q -- 'allow-insecure-snapshot'; then
        local plain pid
        read -r port plain <<<"$(_cluster_free_ports 2)"
        # an explicit plain --listen: the default 127.0.0.1:9980 may be taken on a shared machine
        "$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
            --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
            --listen "127.0.0.1:$plain" --tls-listen "127.0.0.1:$port" --tls-cert "$CLUSTER_DIR/node.crt" \
            --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$CLUSTER_DIR/ca.crt" \
            --name etcd-0 --data-dir "$(cluster_data-dir 0)" 2>>"$LOGDIR/agent.log" &
        pid=$!
        local deadline=$((SECONDS + 30))
        until curl -sf --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
            --key "$CLUSTER_DIR/client.key" -o "$SNAP" "https://127.0.0.1:$port/snapshot"; do
            [ $SECONDS -lt $deadline ] || break
            sleep 0.5
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        if [ -s "$SNAP" ]; then
            SNAP_HOW="through the agent's /snapshot (mTLS)"
            return 0
        fi
    fi
    cluster_etcdctl 0 snapshot save "$SNAP" >/dev/null 2>&1 || return 1
    SNAP_HOW="with etcdctl snapshot save (agent without /snapshot)"
}

# ---- scenarios -------------------------------------------------------------------------------

# Quorum lost: etcd-0 and etcd-1 corrupt, etcd-2 runs alone. Without a restore request the
# corrupt members refuse and nothing changes.
s_quorum_lost_refuse() {
    local i before
    cluster_stop 0
    cluster_stop 1
    corrupt_db 0
    corrupt_db 1
    for i in 0 1; do
        before=$(tree_sum "$(cluster_data-dir "$i")")
        rm -f "$(mdir "$i")/state"
        run_rm "$i"
        expect_action "$i" refuse 3 || return 1
        [ "$(tree_sum "$(cluster_data-dir "$i")")" = "$before" ] || die "etcd-$i data changed" || return 1
        [ ! -e "$(mdir "$i")/state" ] || die "etcd-$i: state written on refuse" || return 1
    done
}

# Not a snapshot: refused (exit 3) before anything is touched.
s_reject_bad_snapshots() {
    local before bad d0 port
    d0=$(cluster_data-dir 0)
    before=$(tree_sum "$d0")
    bad=$LOGDIR/bad
    mkdir -p "$bad"
    printf '<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>\n' >"$bad/s3.xml"
    printf '<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n' >"$bad/page.html"
    head -c $(($(stat -c %s "$SNAP") - 4096)) "$SNAP" >"$bad/truncated.db"
    cp "$SNAP" "$bad/flipped.db"
    printf '\x5a' | dd of="$bad/flipped.db" bs=1 seek=$(($(stat -c %s "$SNAP") / 2)) conv=notrunc status=none
    head -c $(($(stat -c %s "$SNAP") - 32)) "$SNAP" >"$bad/raw.db"
    cp "$SNAP" "$bad/badmeta.db"
    printf 'garbage' | dd of="$bad/badmeta.db" bs=1 seek=16 conv=notrunc status=none
    printf 'garbage' | dd of="$bad/badmeta.db" bs=1 seek=4112 conv=notrunc status=none
    for f in s3.xml page.html truncated.db flipped.db raw.db badmeta.db missing.db; do
        run_rm 0 --restore-from "$bad/$f"
        expect_action 0 refuse 3 || { WHY="$f: $WHY"; return 1; }
    done
    # an object store's HTML error page over http, and a 404
    port=$(_cluster_free_ports 1)
    (cd "$bad" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
    PIDS+=($!)
    local deadline=$((SECONDS + 20))
    until curl -sf "http://127.0.0.1:$port/page.html" >/dev/null; do
        [ $SECONDS -lt $deadline ] || die "http server did not start" || return 1
        sleep 0.2
    done
    for f in page.html nothing-here.db; do
        run_rm 0 --restore-from "http://127.0.0.1:$port/$f"
        expect_action 0 refuse 3 || { WHY="http $f: $WHY"; return 1; }
    done
    [ "$(tree_sum "$d0")" = "$before" ] || die "etcd-0 data changed" || return 1
    ! ls -d "$d0".restore-* >/dev/null 2>&1 || die "leftovers: $(ls -d "$d0".restore-*)" || return 1
    ! ls -d "$d0".reset-* >/dev/null 2>&1 || die "data moved aside" || return 1
}

# Usage: a --restore-member nobody has is an error (every member would wait forever).
s_cli() {
    run_rm 1 --restore-from "$SNAP" --restore-member etcd-9 --dry-run
    [ "$RC" = 2 ] || die "unknown --restore-member: rc $RC (want 2)" || return 1
    "$RM" --help | grep -q -- --restore-from || die "--help lacks --restore-from" || return 1
}

# A peer run before the restored member is up exits non-zero and touches nothing.
s_peer_waits() {
    local before
    cluster_stop 2
    before=$(tree_sum "$(cluster_data-dir 1)")
    run_rm 1 --restore-from "$SNAP"
    expect_action 1 refuse 3 || return 1
    [ "$(tree_sum "$(cluster_data-dir 1)")" = "$before" ] || die "etcd-1 data changed" || return 1
}

s_restore() {
    local t0 i ids
    t0=$(date +%s.%N)
    run_rm 0 --restore-from "$SNAP"
    RESTORE_SECONDS=$(python3 -c "import sys; print('%.2f' % ($(date +%s.%N) - $t0))")
    expect_action 0 restore || return 1
    # the restore tool follows the etcd build: etcdutl where it exists (3.5+, the only one in
    # 3.6), etcdctl on 3.4, which has no etcdutl
    local want_tool=etcdctl
    command -v etcdutl >/dev/null && want_tool=etcdutl
    case $(etcd --version | sed -n 's/^etcd Version: //p') in
    3.4.*) [ "$want_tool" = etcdctl ] || die "etcd 3.4 with an etcdutl in PATH" || return 1 ;;
    *) [ "$want_tool" = etcdutl ] || die "etcd 3.5+ without etcdutl in PATH" || return 1 ;;
    esac
    local got_tool # from this run's log line (stderr): the "restore" object's "tool"
    got_tool=$(python3 -c '
import json, sys
t = ""
for line in open(sys.argv[1]):
    try:
        t = json.loads(line).get("restore", {}).get("tool", t)
    except (ValueError, AttributeError):
        pass
print(t)' "$LOGDIR/rm-0.log")
    [ "$got_tool" = "$want_tool" ] || die "etcd-0 restored with '$got_tool', want $want_tool" || return 1
    RESTORE_TOOL=$want_tool
    [ "$(cat "$(mdir 0)/state")" = new ] || die "etcd-0 state not new" || return 1
    grep -q '^role=restorer' "$(cluster_data-dir 0).restore-marker" || die "no marker" || return 1
    ls -d "$(cluster_data-dir 0)".reset-* >/dev/null 2>&1 || die "old data not moved aside" || return 1
    start_from_state 0 || return 1
    wait_healthy 0 || return 1
    # etcd-1: corrupt data of the lost cluster; etcd-2: valid data of the lost cluster
    for i in 1 2; do
        run_rm_until "$i" reset --restore-from "$SNAP" || return 1
        start_from_state "$i" || return 1
        promote_new "$i" || return 1
        wait_healthy "$i" || return 1
    done
    ids=$(members_json 0 | python3 -c '
import json, sys
ms = json.load(sys.stdin)["members"]
ok = len(ms) == 3 and all(m.get("clientURLs") and not m.get("isLearner") for m in ms)
print(" ".join(sorted("%x" % m["ID"] for m in ms)) if ok else "bad")')
    [ "$ids" != bad ] || die "not 3 started voters: $(members_json 0)" || return 1
    MEMBER_IDS=$ids
}

s_keys_on_each_member() {
    local i want got
    want=$(for k in $(seq 1 $NKEYS); do echo "k/$k"; done | sort)
    for i in 0 1 2; do
        local deadline=$((SECONDS + TIMEOUT))
        until got=$(keys_on "$i") && [ "$got" = "$want" ]; do
            [ $SECONDS -lt $deadline ] ||
                die "etcd-$i serves $(echo "$got" | grep -c .) of $NKEYS snapshot keys" || return 1
            sleep 0.5
        done
        cluster_etcdctl "$i" get after-snapshot --consistency=s --print-value-only | grep -q . &&
            die "etcd-$i has a key written after the snapshot" && return 1
    done
    return 0
}

s_member_ids_consistent() {
    local i self name
    for i in 0 1 2; do
        self=$(cluster_etcdctl "$i" endpoint status -w json | python3 -c '
import json, sys
print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
        case " $MEMBER_IDS " in *" $self "*) ;; *) die "etcd-$i status says $self, list has $MEMBER_IDS" || return 1 ;; esac
        name=$(members_json "$i" | python3 -c '
import json, sys
want = int(sys.argv[1], 16)
print([m.get("name", "") for m in json.load(sys.stdin)["members"] if m["ID"] == want][0])' "$self")
        [ "$name" = "etcd-$i" ] || die "etcd-$i: member $self is named '$name'" || return 1
    done
}

# Pod restarts with the restore request still set: keep, data untouched. A dry run of the
# restorer with its marker removed refuses: a cluster with quorum answers.
s_rerun_keep() {
    local i before
    for i in 0 1 2; do
        cluster_stop "$i"
        before=$(tree_sum "$(cluster_data-dir "$i")")
        run_rm "$i" --restore-from "$SNAP"
        expect_action "$i" keep || return 1
        [ "$(tree_sum "$(cluster_data-dir "$i")")" = "$before" ] || die "etcd-$i data changed" || return 1
        start_from_state "$i" || return 1
        wait_healthy "$i" || return 1
    done
    cluster_stop 0
    mv "$(cluster_data-dir 0).restore-marker" "$LOGDIR/marker"
    run_rm 0 --restore-from "$SNAP" --dry-run
    mv "$LOGDIR/marker" "$(cluster_data-dir 0).restore-marker"
    expect_action 0 refuse 3 || return 1
    case $OUT in *quorum*) ;; *) die "refused for another reason: $OUT" || return 1 ;; esac
    start_from_state 0 && wait_healthy 0 1 2
}

# A restore from an http URL into a scratch member (unreachable cluster); the rerun is a no-op
# even with the server gone.
scratch_rm() { # dir [flags]: reset-member as the restorer of a scratch one-member cluster
    local d=$1
    shift
    OUT=$("$RM" --name etcd-x --data-dir "$d/data" --peer-url "https://127.0.0.1:$SCRATCH_PEER" \
        --initial-cluster "etcd-x=https://127.0.0.1:$SCRATCH_PEER" \
        --endpoints "https://127.0.0.1:$SCRATCH_CLIENT" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --state-file "$d/state" --env-file "$d/env" --timeout 2s "$@" 2>>"$LOGDIR/reset-member.log")
    RC=$?
    echo "scratch $*: rc=$RC $OUT" >>"$LOGDIR/reset-member.log"
}

s_url_restore() {
    local d port pid sha
    read -r SCRATCH_PEER SCRATCH_CLIENT port <<<"$(_cluster_free_ports 3)"
    d=$LOGDIR/url
    mkdir -p "$d/srv"
    cp "$SNAP" "$d/srv/snap.db"
    (cd "$d/srv" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
    pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + 20))
    until curl -sf -o /dev/null "http://127.0.0.1:$port/snap.db"; do
        [ $SECONDS -lt $deadline ] || die "http server did not start" || return 1
        sleep 0.2
    done
    scratch_rm "$d" --restore-from "http://127.0.0.1:$port/snap.db"
    expect_action x restore || return 1
    sha=$(tail -c 32 "$SNAP" | od -An -tx1 | tr -d ' \n')
    grep -q "^sha256=$sha\$" "$d/data.restore-marker" || die "marker digest" || return 1
    [ -s "$d/data/member/snap/db" ] || die "no db restored" || return 1
    ! ls "$d"/data.restore-download "$d"/data.restore-staging >/dev/null 2>&1 || die "leftovers" || return 1
    kill "$pid"
    wait "$pid" 2>/dev/null
    scratch_rm "$d" --restore-from "http://127.0.0.1:$port/snap.db"
    expect_action x keep || return 1
}

# https with a client certificate (what an agent's /snapshot requires): served by a python
# TLS server that demands a cert signed by the cluster CA. Without the cert: refused, nothing
# touched.
s_https_restore() {
    local d port pid
    read -r SCRATCH_PEER SCRATCH_CLIENT port <<<"$(_cluster_free_ports 3)"
    d=$LOGDIR/https
    mkdir -p "$d/srv"
    cp "$SNAP" "$d/srv/snap.db"
    python3 - "$d/srv" "$port" "$CLUSTER_DIR" >"$LOGDIR/https.log" 2>&1 <<'PY' &
import http.server, os, ssl, sys
root, port, cd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.chdir(root)
srv = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cd + "/node.crt", cd + "/node.key")
ctx.load_verify_locations(cd + "/ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
    pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + 20))
    until curl -sf -o /dev/null --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" "https://127.0.0.1:$port/snap.db"; do
        [ $SECONDS -lt $deadline ] || die "https server did not start" || return 1
        sleep 0.2
    done
    # no client cert: the handshake fails, nothing is touched
    OUT=$("$RM" --name etcd-x --data-dir "$d/data" --peer-url "https://127.0.0.1:$SCRATCH_PEER" \
        --initial-cluster "etcd-x=https://127.0.0.1:$SCRATCH_PEER" \
        --endpoints "https://127.0.0.1:$SCRATCH_CLIENT" --cacert "$CLUSTER_DIR/ca.crt" \
        --state-file "$d/state" --timeout 2s --restore-from "https://127.0.0.1:$port/snap.db" \
        2>>"$LOGDIR/reset-member.log")
    RC=$?
    expect_action x refuse 3 || return 1
    [ ! -e "$d/data" ] && [ ! -e "$d/state" ] || die "something was written without a cert" || return 1
    scratch_rm "$d" --restore-from "https://127.0.0.1:$port/snap.db"
    expect_action x restore || return 1
    [ -s "$d/data/member/snap/db" ] || die "no db restored" || return 1
    # straight from an agent's /snapshot (mTLS)
    "$AGENT" --help 2>&1 | grep -q allow-insecure-snapshot || die "$AGENT has no /snapshot" || return 1
    local plain
    read -r SCRATCH_PEER SCRATCH_CLIENT port plain <<<"$(_cluster_free_ports 4)"
    "$AGENT" --endpoints "$(cluster_client-url 1)" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --listen "127.0.0.1:$plain" --tls-listen "127.0.0.1:$port" --tls-cert "$CLUSTER_DIR/node.crt" \
        --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$CLUSTER_DIR/ca.crt" \
        --name etcd-1 --data-dir "$(cluster_data-dir 1)" 2>>"$LOGDIR/agent.log" &
    PIDS+=($!)
    d=$LOGDIR/agent-url
    mkdir -p "$d"
    deadline=$((SECONDS + 20))
    until curl -sf -o /dev/null --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" \
        --key "$CLUSTER_DIR/client.key" -I "https://127.0.0.1:$port/snapshot"; do
        [ $SECONDS -lt $deadline ] || die "agent did not start" || return 1
        sleep 0.2
    done
    scratch_rm "$d" --restore-from "https://127.0.0.1:$port/snapshot"
    expect_action x restore || { WHY="from the agent: $WHY"; return 1; }
    [ -s "$d/data/member/snap/db" ] || die "no db restored from the agent" || return 1
}

# kill -9 right after each restore step, then rerun: restored once the marker is there, keep after.
s_crash_steps() {
    local step d first cid old
    read -r SCRATCH_PEER SCRATCH_CLIENT <<<"$(_cluster_free_ports 2)"
    for step in restore restore-move swap marker env state; do
        d=$LOGDIR/crash-$step
        mkdir -p "$d"
        # old data to move aside: etcd-2's copy of the lost cluster (empty if there is none)
        old=$(ls -d "$(cluster_data-dir 2).reset-"* 2>/dev/null | head -1)
        if [ -n "$old" ]; then cp -a "$old" "$d/data"; else mkdir -p "$d/data"; fi
        RESET_MEMBER_CRASH_AT=$step scratch_rm "$d" --restore-from "$SNAP"
        [ "$RC" = 137 ] || die "crash at $step: rc $RC (want 137): $OUT" || return 1
        scratch_rm "$d" --restore-from "$SNAP"
        first=$(jget action <<<"$OUT")
        case $step:$first in
        restore:restore | restore-move:restore | swap:restore | marker:keep | env:keep | state:keep) ;;
        *) die "after a crash at $step: $OUT" || return 1 ;;
        esac
        [ "$RC" = 0 ] || die "rerun after $step: rc $RC" || return 1
        [ ! -e "$d/data.restore-staging" ] || die "after $step: staging dir left" || return 1
        cid=$(sed -n 's/^cluster_id=//p' "$d/data.restore-marker")
        [ -n "$cid" ] || die "after $step: no marker" || return 1
        scratch_rm "$d" --restore-from "$SNAP"
        expect_action x keep || { WHY="after $step: $WHY"; return 1; }
    done
}

ALL="cli quorum_lost_refuse reject_bad_snapshots peer_waits restore
keys_on_each_member member_ids_consistent rerun_keep url_restore https_restore crash_steps"

if ! cluster_up 3 >"$LOGDIR/up.log" 2>&1; then
    fail setup "cluster up: $(tail -3 "$LOGDIR/up.log")"
    finish
fi
write_keys || { fail setup "writing keys"; finish; }
take_snapshot || { fail setup "snapshot"; finish; }
cluster_etcdctl 0 put after-snapshot yes >/dev/null
echo "setup: $NKEYS keys, snapshot of $(stat -c %s "$SNAP") bytes taken $SNAP_HOW"

for s in ${*:-$ALL}; do
    run_scenario "$s"
done
[ -n "${RESTORE_SECONDS:-}" ] && echo "restore (reset-member on etcd-0 with ${RESTORE_TOOL:-?}, $(stat -c %s "$SNAP") bytes): ${RESTORE_SECONDS}s"
finish
