#!/usr/bin/env bash
# reset_member.sh - reset-member end to end against a real 3-member TLS cluster (issue 3's ten
# scenarios). A pod restart is simulated as a process restart: stop etcd-i, run reset-member
# with etcd-i's flags, start etcd-i with the state (and initial cluster) it wrote, then check
# with etcdctl: member list, health, serializable reads on that member of keys written before.
# Learners are promoted by promote_learner() here (the agent's job in production).
#
# usage: BUILD=build tests/e2e/reset_member.sh [scenario...]   (default: all, in order)
# E2E_KEEP_LOGS=1 keeps reset-member's output and log lines (path printed at the end).
# Prints "ok <name>" / "FAIL <name>: why" per scenario and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
TIMEOUT=${E2E_WAIT_SECONDS:-90}
FOREIGN_DIR=""
LOGDIR=$WORK
at_exit '[ -n "$FOREIGN_DIR" ] && (CLUSTER_DIR=$FOREIGN_DIR cluster_down)'
need_bins "$RM"

# etcdctl through member 0 (or 2), retried: etcd refuses membership changes for 5 s after a
# member (re)connects ("unhealthy cluster").
ctl_retry() {
    local deadline=$((SECONDS + TIMEOUT)) who
    while :; do
        for who in 0 2 1; do
            _cluster_alive "$who" && break
        done
        cluster_etcdctl "$who" "$@" >/dev/null 2>>"$LOGDIR/etcdctl.log" && return 0
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}

members_json() { cluster_etcdctl "${1:-0}" member list -w json; }

# member_field hexid field: a member's field from the list (through member 0 or 2).
member_field() {
    local who
    for who in 0 2 1; do
        _cluster_alive "$who" || continue
        members_json "$who" 2>/dev/null | python3 -c '
import json, sys
want, field = int(sys.argv[1], 16), sys.argv[2]
for m in json.load(sys.stdin).get("members", []):
    if m["ID"] == want:
        v = m.get(field, "" if field == "name" else False)  # etcdctl omits empty fields
        print(v if isinstance(v, str) else str(v).lower()); break
else:
    print("absent")' "$1" "$2" && return 0
    done
    return 1
}

# promote_learner hexid: retry MemberPromote until it succeeds (the learner must catch up).
promote_learner() {
    local id=$1 deadline=$((SECONDS + TIMEOUT)) who
    while [ $SECONDS -lt $deadline ]; do
        for who in 0 2 1; do
            _cluster_alive "$who" || continue
            cluster_etcdctl "$who" member promote "$id" >/dev/null 2>&1 && return 0
            [ "$(member_field "$id" isLearner)" = false ] && return 0
            break
        done
        sleep 0.5
    done
    die "learner $id not promoted within ${TIMEOUT}s"
}

# settle i: after a start, promote etcd-i if it is a learner, then wait until it is healthy and
# serves the keys written at setup with serializable reads.
settle() {
    local i=$1 id
    id=$(jget member_id <<<"$OUT")
    if [ -n "$id" ] && [ "$(member_field "$id" isLearner)" = true ]; then
        promote_learner "$id" || return 1
    fi
    CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy "$i" >/dev/null 2>&1 ||
        die "etcd-$i not healthy: $(tail -3 "$(mdir "$i")/etcd.log" | cut -c1-300)" || return 1
    check_keys "$i" && check_membership
}

check_keys() {
    local i=$1 k v deadline=$((SECONDS + TIMEOUT))
    for k in 1 2 3; do
        until v=$(cluster_etcdctl "$i" get "e2e-key-$k" --consistency=s --print-value-only 2>/dev/null) &&
            [ "$v" = "value-$k" ]; do
            [ $SECONDS -lt $deadline ] || die "etcd-$i: serializable get e2e-key-$k = '$v'" || return 1
            sleep 0.3
        done
    done
}

# Three started voting members, one entry per peer URL.
check_membership() {
    local list
    list=$(members_json 0 2>/dev/null || members_json 2) || die "member list failed" || return 1
    python3 -c '
import json, sys
ms = json.loads(sys.argv[1])["members"]
urls = [u for m in ms for u in m["peerURLs"]]
ok = len(ms) == 3 and len(set(urls)) == 3 and all(m.get("clientURLs") for m in ms) \
    and not any(m.get("isLearner") for m in ms)
sys.exit(0 if ok else 1)' "$list" || die "membership not 3 started voters: $list" || return 1
}

tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }

stop_member() { cluster_stop "$1"; }

last_wal() { find "$(cluster_data-dir "$1")/member/wal" -name '*.wal' | sort | tail -1; }

# ---- scenarios ---------------------------------------------------------------------------

# 1. Fresh bootstrap through reset-member: wipe every member, run it for each (all
# unreachable -> bootstrap), start 0 and 1; member 2, late, finds the cluster formed and its
# entry unstarted -> join.
s_bootstrap() {
    local i
    for i in 0 1 2; do stop_member "$i"; done
    for i in 0 1 2; do
        rm -rf "$(cluster_data-dir "$i")" && mkdir -m 700 "$(cluster_data-dir "$i")"
    done
    for i in 0 1; do
        run_rm "$i"
        expect_action "$i" bootstrap || return 1
        [ "$(cat "$(mdir "$i")/state")" = new ] || die "etcd-$i state not new" || return 1
    done
    for i in 0 1; do start_from_state "$i" || return 1; done
    CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy 0 1 >/dev/null 2>&1 || die "0,1 not healthy" || return 1
    run_rm 2
    case $(jget action <<<"$OUT") in
    join | bootstrap) ;;
    *) die "etcd-2: $OUT" || return 1 ;;
    esac
    [ "$RC" = 0 ] || die "etcd-2 rc $RC: $OUT" || return 1
    start_from_state 2 || return 1
    CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy 0 1 2 >/dev/null 2>&1 || die "not healthy" || return 1
    for i in 1 2 3; do cluster_etcdctl all put "e2e-key-$i" "value-$i" >/dev/null || { die "put"; return 1; }; done
    for i in 0 1 2; do check_keys "$i" || return 1; done
    check_membership
}

# 2. Plain restart: keep, data untouched.
s_restart() {
    local before
    stop_member 1
    before=$(tree_sum "$(cluster_data-dir 1)")
    run_rm 1
    expect_action 1 keep || return 1
    [ "$(tree_sum "$(cluster_data-dir 1)")" = "$before" ] || die "data changed by keep" || return 1
    [ "$(cat "$(mdir 1)/state")" = existing ] || die "state not existing" || return 1
    start_from_state 1 && settle 1
}

# 3. Data dir deleted (PVC and pod deleted): readd (or join), healthy, keys present.
s_data_deleted() {
    stop_member 2
    rm -rf "$(cluster_data-dir 2)"
    run_rm 2
    case $(jget action <<<"$OUT") in
    readd | join) ;;
    *) die "etcd-2: $OUT" || return 1 ;;
    esac
    [ "$RC" = 0 ] || die "rc $RC: $OUT" || return 1
    start_from_state 2 && settle 2
}

# 4. Removed with `etcdctl member remove` while running: reset, rejoins, healthy.
s_removed() {
    local id
    id=$(cluster_member-id 1) || die "no id for etcd-1" || return 1
    ctl_retry member remove "$id" || die "member remove failed" || return 1
    stop_member 1
    # --dry-run first: decides reset but changes nothing (data, membership, state file)
    local before list_before
    before=$(tree_sum "$(cluster_data-dir 1)")
    list_before=$(members_json 0 | python3 -c 'import json,sys; print(sorted(m["ID"] for m in json.load(sys.stdin)["members"]))')
    rm -f "$(mdir 1)/state"
    run_rm 1 --dry-run
    expect_action 1 reset || return 1
    [ "$(tree_sum "$(cluster_data-dir 1)")" = "$before" ] || die "--dry-run changed the data" || return 1
    [ ! -e "$(mdir 1)/state" ] || die "--dry-run wrote the state file" || return 1
    [ "$(members_json 0 | python3 -c 'import json,sys; print(sorted(m["ID"] for m in json.load(sys.stdin)["members"]))')" = "$list_before" ] ||
        die "--dry-run changed the membership" || return 1
    run_rm 1
    expect_action 1 reset || return 1
    ls -d "$(cluster_data-dir 1)".reset-* >/dev/null 2>&1 || die "no moved-aside copy" || return 1
    start_from_state 1 && settle 1
}

# 5. Operator's recovery: member remove + member add of the peer URL, empty data: join.
s_operator_add() {
    local id added
    stop_member 2
    id=$(cluster_member-id 2) || die "no id for etcd-2" || return 1
    ctl_retry member remove "$id" || die "member remove failed" || return 1
    ctl_retry member add etcd-2 --peer-urls "$(cluster_peer-url 2)" ||
        die "member add failed" || return 1
    rm -rf "$(cluster_data-dir 2)"
    run_rm 2
    expect_action 2 join || return 1
    added=$(jget member_id <<<"$OUT")
    [ "$(member_field "$added" name)" = "" ] || die "join did not pick the unstarted entry" || return 1
    start_from_state 2 && settle 2
}

# 6. Corruption of one member with quorum: reset, healthy. Three kinds.
corrupt_and_reset() { # i kind
    local i=$1 kind=$2 d
    stop_member "$i"
    d=$(cluster_data-dir "$i")
    case $kind in
    bbolt)
        python3 - "$d/member/snap/db" <<'EOF' || die "corrupting bbolt failed" || return 1
import os, sys, struct
p = sys.argv[1]
with open(p, "r+b") as f:
    ps = struct.unpack_from("<I", f.read(32), 24)[0]
    for off in (0, ps):
        f.seek(off)
        f.write(os.urandom(ps))
EOF
        ;;
    wal-truncated | wal-flip)
        python3 - "$(last_wal "$i")" "$kind" <<'EOF' || die "corrupting WAL failed" || return 1
import os, sys, struct
p, kind = sys.argv[1], sys.argv[2]
b = open(p, "rb").read()
off, recs = 0, []
while off + 8 <= len(b):
    w = struct.unpack_from("<Q", b, off)[0]
    if w == 0:
        break
    n = w & ((1 << 56) - 1)
    pad = (w >> 56) & 0x7 if w >> 63 else 0
    recs.append((off, n))
    off += 8 + n + pad
if len(recs) < 3:
    sys.exit("too few records")
if kind == "wal-truncated":
    o, n = recs[-1]
    os.truncate(p, o + 8 + n // 2)  # the file ends inside its last record
else:
    o, n = max(recs[2:], key=lambda r: r[1])
    with open(p, "r+b") as f:
        f.seek(o + 8 + n // 2)
        c = f.read(1)
        f.seek(o + 8 + n // 2)
        f.write(bytes([c[0] ^ 0x5A]))
EOF
        ;;
    esac
    run_rm "$i"
    expect_action "$i" reset || return 1
    start_from_state "$i" && settle "$i"
}
s_corrupt_bbolt() { corrupt_and_reset 1 bbolt; }
s_corrupt_wal_truncated() { corrupt_and_reset 2 wal-truncated; }
s_corrupt_wal_flip() { corrupt_and_reset 1 wal-flip; }

# 9. kill -9 right after each step of a full reset (remove, add, move, env, state, prune),
# then rerun: the right continuation, one entry for our URL, keys present, old data kept.
s_crash_steps() {
    local step d first
    for step in remove add move env state prune; do
        stop_member 2
        d=$(cluster_data-dir 2)
        printf 'garbage' | dd of="$d/member/snap/db" bs=1 seek=16 conv=notrunc status=none
        printf 'garbage' | dd of="$d/member/snap/db" bs=1 seek=4112 conv=notrunc status=none
        RESET_MEMBER_CRASH_AT=$step run_rm 2
        [ "$RC" = 137 ] || die "crash at $step: rc $RC (want 137, killed): $OUT" || return 1
        run_rm 2
        first=$(jget action <<<"$OUT")
        case $step:$first in
        remove:reset | add:reset | move:join | env:join | state:join | prune:join) ;;
        *) die "after a crash at $step: $OUT" || return 1 ;;
        esac
        [ "$RC" = 0 ] || die "rerun after $step: rc $RC" || return 1
        ls -d "$d".reset-* >/dev/null 2>&1 || die "after $step: moved-aside copy missing" || return 1
        start_from_state 2 && settle 2 || { WHY="after crash at $step: $WHY"; return 1; }
    done
}

# 10. Learner path: joins as a learner, is a learner until promoted, then votes. Also
# --no-learner adds a voter directly.
s_learner() {
    local id
    stop_member 1
    rm -rf "$(cluster_data-dir 1)"
    run_rm 1
    expect_action 1 readd || return 1
    id=$(jget member_id <<<"$OUT")
    [ "$(member_field "$id" isLearner)" = true ] || die "not added as a learner" || return 1
    start_from_state 1 || return 1
    promote_learner "$id" || return 1
    [ "$(member_field "$id" isLearner)" = false ] || die "still a learner" || return 1
    settle 1 || return 1
    stop_member 1
    rm -rf "$(cluster_data-dir 1)"
    run_rm 1 --no-learner
    expect_action 1 readd || return 1
    id=$(jget member_id <<<"$OUT")
    [ "$(member_field "$id" isLearner)" = false ] || die "--no-learner added a learner" || return 1
    start_from_state 1 && settle 1
}

# 8. A data dir from another cluster: refuse (exit 3), untouched.
s_foreign() {
    local saved before copies
    FOREIGN_DIR=$( (
        cluster_up 1 >/dev/null 2>&1 || exit 1
        cluster_etcdctl 0 put foreign yes >/dev/null
        cluster_stop 0
        echo "$CLUSTER_DIR"
    )) || die "could not make a foreign cluster" || return 1
    stop_member 2
    saved=$LOGDIR/saved-data
    mv "$(cluster_data-dir 2)" "$saved"
    cp -a "$FOREIGN_DIR/members/0/data" "$(cluster_data-dir 2)"
    before=$(tree_sum "$(cluster_data-dir 2)")
    copies=$(ls -d "$(cluster_data-dir 2)".reset-* 2>/dev/null | wc -l)
    run_rm 2
    expect_action 2 refuse 3 || return 1
    [ "$(tree_sum "$(cluster_data-dir 2)")" = "$before" ] || die "foreign data changed" || return 1
    [ "$(ls -d "$(cluster_data-dir 2)".reset-* 2>/dev/null | wc -l)" = "$copies" ] ||
        die "something was moved aside" || return 1
    rm -rf "$(cluster_data-dir 2)"
    mv "$saved" "$(cluster_data-dir 2)"
    run_rm 2
    expect_action 2 keep || return 1
    start_from_state 2 && settle 2
}

# 7. Two members corrupted (quorum lost): refuse for both, data byte-identical. Last: it
# leaves the cluster without quorum.
s_quorum_lost() {
    local i before1 before2
    stop_member 1
    stop_member 2
    for i in 1 2; do
        printf 'garbage' | dd of="$(cluster_data-dir "$i")/member/snap/db" bs=1 seek=16 \
            conv=notrunc status=none
        printf 'garbage' | dd of="$(cluster_data-dir "$i")/member/snap/db" bs=1 seek=4112 \
            conv=notrunc status=none
    done
    before1=$(tree_sum "$(cluster_data-dir 1)")
    before2=$(tree_sum "$(cluster_data-dir 2)")
    for i in 1 2; do
        rm -f "$(mdir "$i")/state"
        run_rm "$i"
        expect_action "$i" refuse 3 || return 1
        [ ! -e "$(mdir "$i")/state" ] || die "etcd-$i: a state file was written on refuse" || return 1
    done
    [ "$(tree_sum "$(cluster_data-dir 1)")" = "$before1" ] || die "etcd-1 data changed" || return 1
    [ "$(tree_sum "$(cluster_data-dir 2)")" = "$before2" ] || die "etcd-2 data changed" || return 1
    # --dry-run changes nothing either, and says the same
    run_rm 1 --dry-run
    expect_action 1 refuse 3
}

# CLI: usage errors exit 2, --help/--version exit 0, env fallbacks are read.
s_cli() {
    local rc
    "$RM" --help >/dev/null 2>&1 || die "--help failed" || return 1
    "$RM" --version | grep -q '^reset-member ' || die "--version" || return 1
    "$RM" --data-dir /nonexistent >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || die "missing --name: rc $rc (want 2)" || return 1
    "$RM" --bogus >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || die "unknown flag: rc $rc (want 2)" || return 1
    # env names of etcd/etcdctl; plain restart of a stopped member decides keep
    stop_member 0
    OUT=$(ETCD_NAME=etcd-0 ETCD_DATA_DIR=$(cluster_data-dir 0) \
        ETCD_INITIAL_ADVERTISE_PEER_URLS=$(cluster_peer-url 0) \
        ETCDCTL_ENDPOINTS=$(cat "$CLUSTER_DIR/endpoints") ETCDCTL_CACERT=$CLUSTER_DIR/ca.crt \
        ETCDCTL_CERT=$CLUSTER_DIR/client.crt ETCDCTL_KEY=$CLUSTER_DIR/client.key \
        "$RM" --state-file "$(mdir 0)/state" --dry-run 2>/dev/null)
    RC=$?
    expect_action 0 keep || return 1
    cluster_start 0 existing || die "etcd-0 did not restart" || return 1
    CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy 0 >/dev/null 2>&1 || die "etcd-0 unhealthy" || return 1
}

# tests/run.sh runs these shards as separate jobs, each with its own cluster:
# shard: cli bootstrap restart data_deleted removed
# shard: operator_add corrupt_bbolt corrupt_wal_truncated corrupt_wal_flip
# shard: crash_steps learner foreign quorum_lost
ALL="cli bootstrap restart data_deleted removed operator_add corrupt_bbolt corrupt_wal_truncated
corrupt_wal_flip crash_steps learner foreign quorum_lost"

# after a failed scenario (lib.bash's run_scenario), bring every stopped member back (best
# effort) so that the next scenarios start from a healthy 3-member cluster.
scenario_failed() {
    local i id
    for i in 0 1 2; do
        _cluster_alive "$i" && continue
        run_rm "$i"
        if [ "$RC" != 0 ]; then
            rm -rf "$(cluster_data-dir "$i")"
            run_rm "$i"
        fi
        start_from_state "$i" >/dev/null 2>&1
        id=$(jget member_id <<<"$OUT")
        [ -n "$id" ] && [ "$(member_field "$id" isLearner)" = true ] && promote_learner "$id"
    done
    CLUSTER_WAIT_SECONDS=$TIMEOUT cluster_wait-healthy 0 1 2 >/dev/null 2>&1 ||
        echo "    (heal: cluster still unhealthy)"
}

if ! cluster_up 3 >"$LOGDIR/up.log" 2>&1; then
    fail setup "cluster up: $(tail -3 "$LOGDIR/up.log")"
    finish
fi
for k in 1 2 3; do
    cluster_etcdctl all put "e2e-key-$k" "value-$k" >/dev/null
done

for s in ${*:-$ALL}; do
    run_scenario "$s"
done
finish
