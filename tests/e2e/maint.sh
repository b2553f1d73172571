#!/usr/bin/env bash
# maint.sh - day-2 maintenance end to end against real 3-member TLS clusters (tests/cluster.sh):
# a fragmented cluster is defragmented one member at a time with the leader last (windows read
# from etcd's own log lines), /readyz says "defragmenting" and /livez stays 200 meanwhile, the
# text table matches `etcdctl endpoint health --cluster -w table`, a consistent cluster is
# never named and a member with a flipped value in member/snap/db is; its agent records that
# beside its data dir, and a pod restart (reset-member with its flags) refuses without quorum,
# moves the data aside and re-adds the member with quorum, after which nobody is named; a small
# quota filled to NOSPACE is made writable again without a human, and left alone (with the
# reason) when space cannot be freed. ETCD_BIN_DIR (optional) holds the etcd/etcdctl to test.
# Prints "ok NAME" / "FAIL NAME" per check; ends with "N passed, N failed, N skipped" (lib.bash).
# shellcheck source=../lib/lib.bash
source "$(dirname "$0")/../lib/lib.bash"
FILL=$BUILD/tests/bench/bench_fill
[ -n "${ETCD_BIN_DIR:-}" ] && PATH=$ETCD_BIN_DIR:$PATH
work=$WORK

# start_agents FLAGS...: one agent beside each member (with its --data-dir); ports in A[0..2].
A=()
start_agents() {
    local i port pid
    # shellcheck disable=SC2034 # pid: start_agent's out variable (AGENT_PIDS has them all)
    for i in 0 1 2; do
        port=$(free_port)
        A[$i]=http://127.0.0.1:$port
        start_agent pid "$i" "$port" --data-dir "$(cluster_data-dir "$i")" "$@"
    done
    for i in 0 1 2; do
        until_true 60 curl -sf -o /dev/null "${A[$i]}/readyz" || return 1
    done
}

# status_json: etcdctl endpoint status of every member, as JSON.
status_json() { cluster_etcdctl all endpoint status -w json 2>/dev/null; }
# db_sizes: "dbSize" of each member, space-separated.
db_sizes() {
    status_json | python3 -c 'import json,sys; print(" ".join(str(s["Status"]["dbSize"]) for s in json.load(sys.stdin)))'
}
leader_hex() {
    status_json | python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)[0]["Status"]["leader"])'
}
# all_below BYTES: every member's db below BYTES.
all_below() {
    local s
    for s in $(db_sizes); do [ "$s" -lt "$1" ] || return 1; done
}
# fragment: live data plus as much garbage, deleted and compacted; a few writes afterwards so
# bbolt hands the freed pages back (dbSizeInUse drops only after later commits).
fragment() {
    local live=$1 garbage=$2 ep
    ep=$(cluster_client-url 0)
    "$FILL" "$ep" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" "$live" 1000000 /live/ \
        >/dev/null || return 1
    "$FILL" "$ep" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" "$garbage" 1000000 /frag/ \
        >/dev/null || return 1
    local rev
    rev=$(cluster_etcdctl 0 del /frag/ --prefix -w json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])') || return 1
    cluster_etcdctl 0 compact --physical "$rev" >/dev/null || return 1
    for k in 1 2 3; do cluster_etcdctl 0 put /after "$k" >/dev/null; sleep 0.3; done
}
coordinator() { first_agent /status 'd["maintenance"]["coordinator"]'; }
metric() { curl -s "$1/metrics" | grep -E "^$2" | awk '{print $2}' | head -1; }

need_bins "$AGENT" "$FILL" "$RM"

# ==== 1. defragmentation, probes during it, HashKV, the table ====================================
eval "$(tests/cluster.sh up 3)" || { fail "cluster up"; finish; }
check "fragment the cluster (live 120 MB, garbage 120 MB)" fragment 120 120
before=$(db_sizes)
leader0=$(leader_hex)
leader_idx=""
for i in 0 1 2; do [ "$(cluster_member-id "$i")" = "$leader0" ] && leader_idx=$i; done
echo "# db sizes before: $before; leader $leader0 (member $leader_idx)"

# Watch every agent's probes from now until the defrags are done (10 Hz).
AGENT_PROBE_INTERVAL=200ms start_agents --defrag-interval 1s --defrag-settle 1s --defrag-min-free 10MB \
    --hashkv-interval 2s || fail "agents ready"
python3 - "$work/probes" "${A[@]}" <<'PY' &
import sys, time, urllib.request
out = open(sys.argv[1], "w")
end = time.time() + 240
while time.time() < end:
    for i, a in enumerate(sys.argv[2:]):
        for path in ("/readyz", "/livez"):
            try:
                r = urllib.request.urlopen(a + path, timeout=2)
                code, body = r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                code, body = e.code, e.read().decode()
            except Exception as e:
                code, body = 0, str(e)
            out.write("%d %s %d %s\n" % (i, path, code, body.strip()))
    out.flush()
    time.sleep(0.1)
PY
watcher_pid=$!
check "every member defragmented: db shrinks from ~290 MB to below 200 MB" until_true 300 all_below 200000000
after=$(db_sizes)
echo "# db sizes after: $after"
kill "$watcher_pid" 2>/dev/null
wait "$watcher_pid" 2>/dev/null

# Defrag windows from etcd's own log lines; the leader's must come after it handed over.
python3 - "$CLUSTER_DIR" "$work" "$leader0" >"$work/windows" <<'PY'
import json, sys, glob, os, datetime
d, work, leader = sys.argv[1], sys.argv[2], sys.argv[3]
def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
wins = {}
for log in sorted(glob.glob(d + "/members/*/etcd.log")):
    m = log.split("/")[-2]
    start = None
    for line in open(log, errors="replace"):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        msg = j.get("msg", "")
        # zap logger: "starting defragment"; capnslog: "starting to defragment the storage
        # backend..." (and "finished defragment" / "finished defragmenting the storage backend")
        if msg.startswith("starting defragment") or msg.startswith("starting to defragment the storage backend"):
            start = ts(j["ts"])
        elif (msg.startswith("finished defragment")) and start:
            wins.setdefault(m, []).append((start, ts(j["ts"])))
            start = None
moved = None
for log in glob.glob(work + "/agent-*.log"):
    for line in open(log, errors="replace"):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "maint: leadership moved" and moved is None:
            moved = ts(j["time"])
print(json.dumps({"windows": wins, "moved": moved}))
PY
cat "$work/windows" | sed 's/^/# /'
no_overlap() {
    python3 - "$work/windows" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))["windows"]
all_ = sorted((s, e, m) for m, l in w.items() for s, e in l)
if len(w) != 3:
    sys.exit(1)
sys.exit(0 if all(all_[i][1] <= all_[i + 1][0] for i in range(len(all_) - 1)) else 1)
PY
}
check "three defrag windows in etcd's logs, no two overlap" no_overlap
leader_last() {
    python3 - "$work/windows" "$leader_idx" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
w, moved = j["windows"], j["moved"]
leader_dir = sys.argv[2]
if moved is None or leader_dir is None or leader_dir not in w:
    sys.exit(1)
first_leader_defrag = min(s for s, e in w[leader_dir])
others = [s for m, l in w.items() if m != leader_dir for s, e in l]
sys.exit(0 if moved < first_leader_defrag and all(s < first_leader_defrag for s in others) else 1)
PY
}
check "the leader handed over leadership first and was defragmented last" leader_last
defragmenting_seen() { grep -q '^[0-9] /readyz 503 .*defragmenting' "$work/probes"; }
check "/readyz said defragmenting during a defrag" defragmenting_seen
livez_all_200() { ! grep -q '^[0-9] /livez [^2]' "$work/probes" && grep -q '/livez 200' "$work/probes"; }
check "/livez stayed 200 throughout" livez_all_200
freed=$(for i in 0 1 2; do metric "${A[$i]}" etcd_agent_defrag_freed_bytes_total; done | awk '{s+=$1} END {printf "%d", s}')
check "etcd_agent_defrag_freed_bytes_total counts the freed space" [ "${freed:-0}" -gt 200000000 ]
# (a number above 0: an absent metric must fail too, not compare "" with 0)
last_ts=$(for i in 0 1 2; do metric "${A[$i]}" etcd_agent_defrag_last_timestamp_seconds; done | sort -g | tail -1)
check "etcd_agent_defrag_last_timestamp_seconds set" python3 -c 'import sys; sys.exit(0 if float(sys.argv[1] or 0) > 1e9 else 1)' "${last_ts:-0}"

# HashKV on a consistent cluster: a verdict, nobody named.
consistent() {
    local c
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/status" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["maintenance"]["hashkv"] == "consistent" else 1)' &&
        ! curl -s "${A[$c]}/metrics" | grep -q '^etcd_agent_hashkv_mismatch{.*} 1'
}
check "hashkv: a consistent cluster is consistent, nobody named" until_true 60 consistent

# The text table against etcdctl's.
cluster_etcdctl 0 endpoint health --cluster -w table >"$work/etcdctl-table" 2>&1
curl -s -H 'Accept: text/plain' "${A[0]}/members" >"$work/agent-table"
curl -s "${A[1]}/members?format=table" >"$work/agent-table2"
sed 's/^/# /' "$work/agent-table"
same_table() {
    python3 - "$work/etcdctl-table" "$work/agent-table" <<'PY'
import sys
def rows(p):
    out = {}
    for line in open(p):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("https://"):
            out[cells[0]] = cells[1]
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
sys.exit(0 if a and a == b else 1)
PY
}
# both tables taken again until they agree (a member slow for a moment under load is unhealthy
# in one and healthy in the other); a lasting difference fails
tables_agree() {
    cluster_etcdctl 0 endpoint health --cluster -w table >"$work/etcdctl-table" 2>&1
    curl -s -H 'Accept: text/plain' "${A[0]}/members" >"$work/agent-table"
    same_table
}
check "text table: same endpoints and health as etcdctl endpoint health --cluster -w table" \
    until_true 30 tables_agree
check "?format=table gives the same table" grep -q "VERDICT" "$work/agent-table2"
check "table has the extra columns" grep -q "LEARNER.*DB SIZE.*LEADER.*HASHKV.*VERDICT" "$work/agent-table"

# A divergent member: flip one unique value inside member 2's bbolt file while it is stopped.
marker=DIVERGE$RANDOM$RANDOM
cluster_etcdctl 0 put /diverge "$marker-AAAA" >/dev/null
# until bbolt committed the value to member 2's db file (the flip below needs it there)
check "the value reached member 2's db file" until_true 30 grep -qa "$marker-AAAA" "$(cluster_data-dir 2)/member/snap/db"
cluster_stop 2
python3 - "$(cluster_data-dir 2)/member/snap/db" "$marker-AAAA" "$marker-BBBB" <<'PY'
import sys
p, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
b = bytes(open(p, "rb").read())
# etcd 3.5 may leave an older copy of the leaf page in a free page: flip every copy
print("# the value occurs %d time(s) in the db" % b.count(old))
assert b.count(old) >= 1, "value not found"
open(p, "r+b").write(b.replace(old, new))
PY
check "flipped one value in member 2's db" [ $? = 0 ]
cluster_start 2 existing
cluster_wait-healthy 2
m2=$(cluster_member-id 2)
divergent_named() {
    local c
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/metrics" | grep -q "^etcd_agent_hashkv_mismatch{member=\"$m2\"} 1" &&
        [ "$(curl -s "${A[$c]}/metrics" | grep -c '^etcd_agent_hashkv_mismatch{.*} 1')" = 1 ] &&
        curl -s "${A[$c]}/members?format=table" | grep "$(cluster_client-url 2)" | grep -q divergent
}
check "hashkv: the divergent member is named (metric and table), nobody else" until_true 60 divergent_named
grep -h '"maint: hashkv mismatch"' "$work"/agent-*.log | tail -1 | cut -c1-300 | sed 's/^/# /'

# The runbook: the divergent member's agent records the verdict beside its data dir; a pod
# restart (stop etcd, reset-member with its flags, start etcd with the state it wrote) moves
# the data aside and re-adds the member as a learner, its agent promotes it, and the next check
# names nobody. The agent that coordinates writes its own member's marker: make member 2 the
# leader so its agent runs the checks.
mdir2=$(cluster_data-dir 2)
cluster_etcdctl all move-leader "$m2" >/dev/null 2>&1
marker_written() {
    python3 - "$mdir2.divergent" "$m2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if m["member_id"] == sys.argv[2] and m["revision"] > 0 and m["hash"] != m["majority_hash"] else 1)
PY
}
check "divergent marker written beside member 2's data dir (member ID, R, both hashes)" \
    until_true 90 marker_written
sed 's/^/# marker: /' "$mdir2.divergent" 2>/dev/null
check "no marker beside the consistent members' data dirs" \
    bash -c "[ ! -e '$(cluster_data-dir 0).divergent' ] && [ ! -e '$(cluster_data-dir 1).divergent' ]"
cluster_stop 2
# Without quorum (members 1 and 2 down) the marker is a refusal: the data stays where it is.
cluster_stop 1
sum_before=$(tree_sum "$mdir2")
run_rm 2
check "marker without quorum: reset-member refuses (exit 3), data and marker untouched" \
    bash -c "[ '$RC' = 3 ] && [ '$(action)' = refuse ] && [ '$(tree_sum "$mdir2")' = '$sum_before' ] && [ -e '$mdir2.divergent' ]"
echo "# $OUT" | cut -c1-300
cluster_start 1 existing
cluster_wait-healthy 0 1
until_true 30 cluster_etcdctl 1 endpoint health >/dev/null 2>&1
run_rm 2
check "marker with quorum: reset-member resets (move aside, add as learner)" \
    bash -c "[ '$RC' = 0 ] && [ '$(action)' = reset ]"
echo "# $OUT" | cut -c1-300
grep '"divergent"' "$WORK/rm-2.log" | tail -1 | cut -c1-400 | sed 's/^/# /'
check "reset-member's decision log line carries R and both hashes" \
    grep -q '"divergent":{[^}]*"revision":[0-9]*,"hash":[0-9]*,"majority_hash":[0-9]*' "$WORK/rm-2.log"
copies=("$mdir2".reset-*)
moved=${copies[0]}
check "the moved-aside copy keeps the marker; none is left beside the new data dir" \
    bash -c "[ -n '$moved' ] && [ -f '$moved/divergent.json' ] && [ ! -e '$mdir2.divergent' ] && [ ! -e '$mdir2/member/snap/db' ]"
start_from_state 2 || fail "etcd-2 starts from reset-member's state" "$WHY"
voter2() {
    cluster_etcdctl 0 member list -w json | python3 -c '
import json, sys
ms = [m for m in json.load(sys.stdin)["members"] if m.get("name") == "etcd-2"]
sys.exit(0 if len(ms) == 1 and "%x" % ms[0]["ID"] != sys.argv[1] and not ms[0].get("isLearner")
         and ms[0].get("clientURLs") else 1)' "$m2"
}
check "member 2 re-added (new ID) as a learner and promoted by its agent" until_true 120 voter2
grep -h '"promot' "$work"/agent-2-*.log | tail -1 | cut -c1-200 | sed 's/^/# /'
fresh_consistent() { # the verdict is consistent and the new member 2 was among the hashed
    local c
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/metrics" | grep -q '^etcd_agent_hashkv_mismatch{.*} 1' && return 1
    curl -s "${A[$c]}/status" | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin)["maintenance"]["hashkv"] == "consistent" else 1)' &&
        curl -s "${A[$c]}/members" | python3 -c '
import json, sys
ms = [m for m in json.load(sys.stdin)["members"] if m["name"] == "etcd-2"]
sys.exit(0 if len(ms) == 1 and ms[0]["hashkv"] and not ms[0]["divergent"] else 1)'
}
# the coordinator may have checked before member 2 caught up: wait for a consistent verdict
check "after the reset a HashKV check names nobody" until_true 120 fresh_consistent
stop_agents
cluster_down

# ==== 2. NOSPACE ===================================================================================
eval "$(ETCD_TEST_EXTRA_FLAGS="--quota-backend-bytes=$((24 * 1024 * 1024))" tests/cluster.sh up 3)" ||
    { fail "small-quota cluster up"; finish; }
start_agents --defrag-interval 0 --defrag-settle 1s --nospace-compact --nospace-resume 60 || fail "agents ready"
fill_until_nospace() {
    "$FILL" "$(cluster_client-url 0)" "$ETCD_TEST_CACERT" "$ETCD_TEST_CERT" "$ETCD_TEST_KEY" 60 \
        1000000 "/$1/" >/dev/null 2>&1
    cluster_etcdctl 0 alarm list | grep -q NOSPACE
}
check "filled to NOSPACE" fill_until_nospace a
put_refused() { ! cluster_etcdctl 0 put /k v >/dev/null 2>&1; }
check "under NOSPACE a put is refused" put_refused
cluster_etcdctl 0 del /a/ --prefix >/dev/null
writable() { cluster_etcdctl 0 put /k v >/dev/null 2>&1 && ! cluster_etcdctl 0 alarm list | grep -q NOSPACE; }
check "keys deleted: the agents make the cluster writable again, no human" until_true 90 writable
grep -h '"maint: NOSPACE alarm disarmed"\|"maint: compacted"' "$work"/agent-*.log | cut -c1-200 | sed 's/^/# /'

check "filled to NOSPACE again (nothing to delete)" fill_until_nospace b
held() {
    local c
    c=$(coordinator) || return 1
    curl -s "${A[$c]}/status" | python3 -c 'import json,sys; r = json.load(sys.stdin)["maintenance"]["nospace_reason"]; sys.exit(0 if r and "NOSPACE kept" in r else 1)' &&
        [ "$(metric "${A[$c]}" etcd_agent_nospace_held)" = 1 ]
}
check "space cannot be freed: the alarm is left, /status and a metric say why" until_true 90 held
sleep 3
alarm_left() { cluster_etcdctl 0 alarm list | grep -q NOSPACE; }
check "... and the alarm is still there" alarm_left
c=$(coordinator) && curl -s "${A[$c]}/status" | python3 -c 'import json,sys; print("# reason:", json.load(sys.stdin)["maintenance"]["nospace_reason"])'
finish
