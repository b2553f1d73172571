#!/usr/bin/env bash
# partition.sh - fault row "network partition of one member": etcd-2 is cut off (SIGSTOP: its
# sockets stay open but nothing answers, as behind a dropped veth). The agent beside a healthy
# member reports etcd-2 failing while its own member stays ready; the agent beside etcd-2
# reports not-ready but answers at once. When etcd-2's pod restarts, reset-member must keep its
# data (valid, member ID listed) whether it restarts still cut off (own network namespace:
# connection refused; or the others hung: timeouts) or after the partition heals; etcd-2 then
# catches up and serves every key written before and during the partition. Nothing is lost:
# data dir byte-identical through every reset-member run, membership unchanged.
# Prints ok/FAIL per check and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
need_bins "$AGENT" "$RM"

cluster_up 3 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
check "keys written before the partition" put_keys before 20
ids_before=$(cluster_etcdctl 0 member list -w json | python3 -c 'import json,sys; print(sorted(m["ID"] for m in json.load(sys.stdin)["members"]))')

p0=$(free_port) p2=$(free_port)
start_agent a0 0 "$p0"
start_agent a2 2 "$p2"
A0=http://127.0.0.1:$p0 A2=http://127.0.0.1:$p2
check "agent beside etcd-0 ready" until_true 60 code_is "$A0/readyz" 200
check "agent beside etcd-2 ready" until_true 60 code_is "$A2/readyz" 200
members_ok() { code_is "$A0/members" 200 && json "$1"; }
check "table: all healthy before" until_true 30 members_ok 'd["verdict"]["failing"] == []'

# ---- the partition -------------------------------------------------------------------------
cluster_pause 2
check "agent beside etcd-0: etcd-2 failing, quorum kept" until_true 40 members_ok \
    'd["verdict"]["failing"] == ["etcd-2"] and d["verdict"]["quorum"] and d["verdict"]["recoverable"]'
check "agent beside etcd-0: etcd-2 has an error" json \
    '[m for m in d["members"] if m["name"] == "etcd-2"][0]["error"] is not None'
check "agent beside etcd-0 stays ready" code_is "$A0/readyz" 200
check "agent beside etcd-2: not ready" until_true 30 code_is "$A2/readyz" 503
t=$(curl -s -o /dev/null --max-time 5 -w '%{time_total}' "$A2/readyz")
check "agent beside etcd-2 answers at once (${t}s)" python3 -c "import sys; sys.exit(float('$t') >= 1)"
check "keys written during the partition (quorum of 2)" put_keys during 20

# ---- the partitioned member's pod restarts --------------------------------------------------
cluster_kill 2 # SIGKILL works on a stopped process: the pod is deleted while cut off
d2=$(cluster_data-dir 2)
sum=$(tree_sum "$d2")

# (a) still cut off, every connection refused: its own network namespace with only loopback
OUT=$(unshare -n sh -c 'ip link set lo up 2>/dev/null; exec "$@"' sh env -u ETCDCTL_ENDPOINTS \
    "$RM" --name etcd-2 --data-dir "$d2" --peer-url "$(cluster_peer-url 2)" \
    --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster")" \
    --endpoints "$(cat "$CLUSTER_DIR/endpoints")" --cacert "$CLUSTER_DIR/ca.crt" \
    --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
    --state-file "$CLUSTER_DIR/members/2/state" --timeout 5s 2>>"$WORK/reset-member.log")
RC=$?
check "restart in its own netns: keep, rc 0 ($(action))" [ "$(action)" = keep ] && [ "$RC" = 0 ]
check "restart in its own netns: data byte-identical" [ "$(tree_sum "$d2")" = "$sum" ]

# (b) still cut off, nothing answers (the others hung): timeouts, not refusals
cluster_pause 0
cluster_pause 1
start=$SECONDS
run_rm 2
took=$((SECONDS - start))
cluster_resume 0
cluster_resume 1
check "restart with the others silent: keep, rc 0 ($(action), ${took}s)" [ "$(action)" = keep ] && [ "$RC" = 0 ]
check "restart with the others silent: data byte-identical" [ "$(tree_sum "$d2")" = "$sum" ]
check "restart with the others silent: within its --timeout budget" [ "$took" -le 30 ]

# (c) the partition healed
cluster_wait-healthy 0 1 >/dev/null 2>&1
run_rm 2
check "restart after the partition heals: keep, rc 0 ($(action))" [ "$(action)" = keep ] && [ "$RC" = 0 ]
check "restart after the partition heals: data byte-identical" [ "$(tree_sum "$d2")" = "$sum" ]
check "state file says existing" [ "$(cat "$CLUSTER_DIR/members/2/state" 2>/dev/null)" = existing ]
check "no copy moved aside" [ -z "$(ls -d "$d2".reset-* 2>/dev/null)" ]

# ---- nothing lost ------------------------------------------------------------------------------
cluster_start 2 existing || fail "etcd-2 restart"
quiet_jobs
check "etcd-2 healthy again" cluster_wait-healthy 2
check "etcd-2 serves the keys from before" until_true 60 keys_on 2 before 20
check "etcd-2 caught up on the keys from during" until_true 60 keys_on 2 during 20
ids_after=$(cluster_etcdctl 0 member list -w json | python3 -c 'import json,sys; print(sorted(m["ID"] for m in json.load(sys.stdin)["members"]))')
check "membership unchanged (same three IDs)" [ "$ids_after" = "$ids_before" ]
check "agent beside etcd-0: all healthy again" until_true 60 members_ok 'd["verdict"]["failing"] == []'
check "agent beside etcd-2 ready again (no restart)" until_true 60 code_is "$A2/readyz" 200
finish
