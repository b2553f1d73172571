#!/usr/bin/env bash
# maint_follower.sh - a divergent FOLLOWER end to end against a real 3-member TLS cluster
# (tests/cluster.sh): every agent asks the leader's agent for its HashKV verdict (GET /hashkv,
# --peer-agents); on a consistent cluster no marker is ever written; after one unique value is
# flipped inside a follower's member/snap/db (stopped, bytes overwritten, restarted) the
# coordinator names it and the follower's own agent writes its marker (--divergent-marker, apart
# from the data dir as in the manifests); a pod
# restart (stop etcd, reset-member with its flags, start etcd with the state it wrote) moves
# the data aside and re-adds the member, its agent promotes it, and it comes back with the
# others' hash. The leader's own marker is tests/e2e/maint.sh's. ETCD_BIN_DIR (optional) holds
# the etcd/etcdctl to test. Prints "ok NAME" / "FAIL NAME"; ends with "N passed, N failed, N
# skipped" (lib.bash).
# shellcheck source=../lib/lib.bash
source "$(dirname "$0")/../lib/lib.bash"
[ -n "${ETCD_BIN_DIR:-}" ] && PATH=$ETCD_BIN_DIR:$PATH
work=$WORK
HASHKV=2s

need_bins "$AGENT" "$RM"

# The markers live apart from the data dirs here (--divergent-marker on the agents and on
# reset-member, as the manifests do: the agent's data mount is read-only there); maint.sh covers
# the default place beside the data dir.
marker_of() { echo "$work/markers-$1/divergent"; }
# One agent beside each member, each told every agent's URL; ports in A[0..2].
A=()
start_agents() {
    local i pid ports=() peers
    # shellcheck disable=SC2034 # pid: start_agent's out variable
    for i in 0 1 2; do
        ports[$i]=$(free_port)
        A[$i]=http://127.0.0.1:${ports[$i]}
    done
    peers=$(IFS=,; echo "${A[*]}")
    # agent 0 also backs up (a file:// store, every 30 s): /members shows the backup's age
    local extra
    mkdir -p "$work/store"
    for i in 0 1 2; do
        extra=()
        [ "$i" = 0 ] && extra=(--backup-url "file://$work/store" --backup-interval 30s --backup-compress none)
        mkdir -p "$(dirname "$(marker_of "$i")")"
        start_agent pid "$i" "${ports[$i]}" --data-dir "$(cluster_data-dir "$i")" \
            --divergent-marker "$(marker_of "$i")" \
            --defrag-interval 0 --hashkv-interval "$HASHKV" --peer-agents "$peers" "${extra[@]}"
    done
    for i in 0 1 2; do
        until_true 60 curl -sf -o /dev/null "${A[$i]}/readyz" || return 1
    done
}
coordinator() { first_agent /hashkv 'd["coordinator"]'; }
leader_idx() {
    local l i
    l=$(cluster_etcdctl all endpoint status -w json 2>/dev/null |
        python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)[0]["Status"]["leader"])') || return 1
    for i in 0 1 2; do [ "$(cluster_member-id "$i")" = "$l" ] && echo "$i" && return 0; done
    return 1
}
# verdict_is WANT [N]: the coordinator's /hashkv says WANT at R > 0 with N hashes (default 3).
verdict_is() {
    local c
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/hashkv" | python3 -c '
import json, sys
v = json.load(sys.stdin)
hs = [m for m in v["members"] if m["ok"]]
sys.exit(0 if v["verdict"] == sys.argv[1] and v["revision"] > 0 and len(hs) == int(sys.argv[2]) else 1)' "$1" "${2:-3}"
}
no_marker() {
    local i
    for i in 0 1 2; do
        [ ! -e "$(marker_of "$i")" ] && [ ! -e "$(cluster_data-dir "$i").divergent" ] || return 1
    done
}

eval "$(tests/cluster.sh up 3)" || { fail "cluster up"; finish; }
start_agents || fail "agents ready"
check "GET /hashkv of the coordinator: consistent, three hashes at one revision" \
    until_true 60 verdict_is consistent
c=$(coordinator) && curl -s "${A[$c]}/hashkv" | cut -c1-300 | sed 's/^/# /'
# The followers ask every interval (2 s): give them five rounds.
sleep 10
check "a consistent cluster: no marker beside any data dir" no_marker
check "the followers reached the leader's agent (no 'cannot learn' line)" \
    bash -c "! grep -q 'cannot learn the leader' '$work'/agent-*.log"

# The last good backup's age in /members (table line and JSON) beside /status's; none without
# --backup-url.
backup_age_shown() {
    curl -s "${A[0]}/members?format=table" | grep -qE '^last good backup: [0-9]+m[0-9]{2}s ago$' &&
        curl -s "${A[0]}/members" | python3 -c '
import json, sys
a = json.load(sys.stdin)["verdict"]["backup_last_good_age_s"]
sys.exit(0 if isinstance(a, int) and 0 <= a < 120 else 1)' &&
        curl -s "${A[0]}/status" | python3 -c '
import json, sys
sys.exit(0 if isinstance(json.load(sys.stdin)["backup"]["last_good_age_s"], int) else 1)'
}
check "/members shows the last good backup's age (table line, JSON), as /status does" \
    until_true 90 backup_age_shown
curl -s "${A[0]}/members?format=table" | tail -2 | sed 's/^/# /'
no_backup_shown() {
    ! curl -s "${A[1]}/members?format=table" | grep -q 'last good backup' &&
        curl -s "${A[1]}/members" | python3 -c 'import json,sys; sys.exit("backup_last_good_age_s" in json.load(sys.stdin)["verdict"])'
}
check "... and nothing about backups without --backup-url" no_backup_shown

# The follower to corrupt: member 2 unless it leads.
l=$(leader_idx) || fail "leader known"
f=2
[ "$l" = 2 ] && f=1
echo "# leader: member $l; corrupting follower member $f"
value=DIVERGE$RANDOM$RANDOM
cluster_etcdctl 0 put /diverge "$value-AAAA" >/dev/null
# until bbolt committed the value to the follower's db file (the flip below needs it there)
check "the value reached follower $f's db file" until_true 30 grep -qa "$value-AAAA" "$(cluster_data-dir "$f")/member/snap/db"
cluster_stop "$f"
python3 - "$(cluster_data-dir "$f")/member/snap/db" "$value-AAAA" "$value-BBBB" <<'PY'
import sys
p, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
b = bytes(open(p, "rb").read())
n = b.count(old)
# etcd 3.5 may leave an older copy of the leaf page in a free page: flip every copy
print("# the value occurs %d time(s) in the db" % n)
assert n >= 1, "value not found"
open(p, "r+b").write(b.replace(old, new))
PY
check "flipped one value in follower $f's db" [ $? = 0 ]
cluster_start "$f" existing
cluster_wait-healthy "$f"
mf=$(cluster_member-id "$f")
mdir=$(cluster_data-dir "$f")
named() {
    local c
    c=$(coordinator) || return 1
    [ "$c" != "$f" ] && curl -s "${A[$c]}/metrics" | grep -q "^etcd_agent_hashkv_mismatch{member=\"$mf\"} 1"
}
check "the coordinator (not member $f) names member $f" until_true 60 named
marker_written() {
    [ -e "$(marker_of "$f")" ] && [ ! -e "$mdir.divergent" ] || return 1
    python3 - "$(marker_of "$f")" "$mf" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if m["member_id"] == sys.argv[2] and m["revision"] > 0 and m["hash"] != m["majority_hash"] else 1)
PY
}
check "the follower's agent writes the marker at its --divergent-marker (ID, R, both hashes)" \
    until_true 60 marker_written
sed 's/^/# marker: /' "$(marker_of "$f")" 2>/dev/null
line_by_follower() { grep -h 'is divergent at revision' "$work"/agent-"$f"-*.log | grep -q 'the check of leader'; }
check "... from the leader's check, one log line in member $f's agent log" line_by_follower
grep -h 'is divergent at revision' "$work"/agent-"$f"-*.log | tail -1 | cut -c1-300 | sed 's/^/# /'
check "its member was a follower all along" [ "$(leader_idx)" != "$f" ]
others_clean() {
    local i
    for i in 0 1 2; do [ "$i" = "$f" ] || [ ! -e "$(marker_of "$i")" ] || return 1; done
}
check "no marker for the consistent members" others_clean
sleep 5
check "one log line for one check (not one per poll)" \
    [ "$(cat "$work"/agent-"$f"-*.log | grep -c 'is divergent at revision')" = 1 ]

# "Delete its pod": stop etcd, reset-member with its flags, start etcd from the state it wrote.
cluster_stop "$f"
run_rm "$f" --divergent-marker "$(marker_of "$f")"
check "reset-member moves member $f's data aside and re-adds it (reset)" \
    bash -c "[ '$RC' = 0 ] && [ '$(action)' = reset ]"
echo "# $OUT" | cut -c1-300
copies=("$mdir".reset-*)
check "the moved-aside copy keeps the marker; none left for the new data dir" \
    bash -c "[ -f '${copies[0]}/divergent.json' ] && [ ! -e '$(marker_of "$f")' ]"
start_from_state "$f" || fail "etcd-$f starts from reset-member's state" "$WHY"
voter() {
    cluster_etcdctl "$l" member list -w json | python3 -c '
import json, sys
ms = [m for m in json.load(sys.stdin)["members"] if m.get("name") == "etcd-" + sys.argv[2]]
sys.exit(0 if len(ms) == 1 and "%x" % ms[0]["ID"] != sys.argv[1] and not ms[0].get("isLearner")
         and ms[0].get("clientURLs") else 1)' "$mf" "$f"
}
check "member $f re-added (new ID) and promoted by its agent" until_true 120 voter
back() { # consistent, and member f's new ID among the three equal hashes
    local c new
    new=$(cluster_member-id "$f") || return 1
    [ "$new" != "$mf" ] || return 1
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/hashkv" | python3 -c '
import json, sys
v = json.load(sys.stdin)
hs = {m["id"]: m["hash"] for m in v["members"] if m["ok"]}
sys.exit(0 if v["verdict"] == "consistent" and len(hs) == 3 and sys.argv[1] in hs
         and len(set(hs.values())) == 1 else 1)' "$new"
}
check "member $f comes back with the others' hash" until_true 120 back
c=$(coordinator) && curl -s "${A[$c]}/hashkv" | cut -c1-300 | sed 's/^/# /'
sleep 6
check "and gets no new marker" no_marker
finish
