#!/usr/bin/env bash
# agent.sh - etcd-agent end to end against a real 3-member TLS cluster (tests/cluster.sh):
# every endpoint's status and body, readiness following the local member, liveness through a
# quorum loss, the cluster table's verdict, learner promotion, probe load under wrk, h2c,
# promtool on /metrics, flags and graceful stop. Prints "ok NAME" / "FAIL NAME" per check and
# ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
source "$(dirname "$0")/../lib/lib.bash"
work=$WORK
get() { http_code "$@"; } # get URL [curl args...]: body and headers into $WORK; prints the code

[ -x "$AGENT" ] || { fail build "$AGENT missing"; finish; }

# ---- flags -------------------------------------------------------------------------------------
"$AGENT" --no-such-flag >/dev/null 2>"$work/err"
check "bad flag exits 2" [ $? = 2 ]
check "bad flag prints usage" grep -q "usage" "$work/err"
"$AGENT" --version >"$work/out" 2>&1
check "--version exits 0" [ $? = 0 ]
check "--version prints a version" grep -q "etcd-agent" "$work/out"
"$AGENT" --help >"$work/out" 2>&1
check "--help exits 0" [ $? = 0 ]
check "--help lists --probe-interval" grep -q "probe-interval" "$work/out"
"$AGENT" --probe-interval 0s --cacert /nonexistent >/dev/null 2>&1
check "out-of-range interval exits 2" [ $? = 2 ]

eval "$(tests/cluster.sh up 3)" || { fail "cluster up"; finish; }

port=$(free_port)
start_agent agent0 0 "$port"
A=http://127.0.0.1:$port
check "agent becomes ready" until_true 60 code_is "$A/readyz" 200

# ---- every endpoint ----------------------------------------------------------------------------
code=$(get "$A/readyz")
check "readyz 200" [ "$code" = 200 ]
check "readyz json content-type" [ "$(header content-type)" = "application/json" ]
check "readyz body ok" json 'd["status"] == "ok" and all(v == "ok" for v in d["checks"].values())
    and set(d["checks"]) == {"status","serializable_read","leader","learner","alarm"}
    and isinstance(d["age_ms"], (int, float)) and 0 <= d["age_ms"] < 10000'
code=$(get "$A/healthz")
check "healthz 200 same body" [ "$code" = 200 ]
check "healthz body ok" json 'd["status"] == "ok"'
code=$(get "$A/readyz?verbose")
check "readyz?verbose 200 text" [ "$code" = 200 ]
check "readyz?verbose content-type" [ "$(header content-type)" = "text/plain; charset=utf-8" ]
check "readyz?verbose lines" grep -qx '\[+\]leader ok' "$work/body"
check "readyz?verbose summary" grep -qx 'readyz check passed' "$work/body"
code=$(get "$A/livez")
check "livez 200" [ "$code" = 200 ]
check "livez body" json 'd["status"] == "ok" and d["checks"]["local_member"] == "ok"'

code=$(get "$A/status")
check "status 200" [ "$code" = 200 ]
m0=$(cluster_member-id 0)
check "status body" json "d['ok'] and d['status']['member_id'] == '$m0' and
    d['status']['version'].startswith('3.') and d['status']['leader'] is not None and
    d['status']['raft_index'] > 0 and d['status']['db_size'] > 0 and d['alarms'] == []"

check "members table filled" until_true 30 code_is "$A/members" 200
code=$(get "$A/members")
check "members body: 3 healthy, one leader" json 'len(d["members"]) == 3 and
    all(m["healthy"] and m["started"] and not m["learner"] and m["error"] is None for m in d["members"])
    and sum(m["leader"] for m in d["members"]) == 1
    and sorted(m["name"] for m in d["members"]) == ["etcd-0","etcd-1","etcd-2"]
    and all(m["client_urls"] and m["peer_urls"] and m["db_size"] > 0 and m["raft_index"] > 0
            and m["took_ms"] is not None for m in d["members"])'
check "members verdict healthy" json 'd["verdict"]["quorum"] and d["verdict"]["failing"] == []
    and d["verdict"]["recoverable"] is False'
check "members ids are hex" json "'$m0' in [m['id'] for m in d['members']]"

code=$(get "$A/metrics")
check "metrics 200" [ "$code" = 200 ]
check "metrics content-type" [ "$(header content-type)" = "text/plain; version=0.0.4; charset=utf-8" ]
if command -v promtool >/dev/null; then
    check "promtool check metrics" promtool check metrics <"$work/body"
else
    skip "promtool check metrics" "promtool not installed"
fi
check "metrics etcd_agent_up 1" grep -qx 'etcd_agent_up 1' "$work/body"
check "metrics member healthy" grep -qx 'etcd_agent_member_healthy 1' "$work/body"
check "metrics 3 healthy members" grep -qx 'etcd_agent_cluster_members{state="healthy"} 3' "$work/body"
check "metrics http counter" grep -q '^etcd_agent_http_requests_total{path="/readyz",code="200"} ' "$work/body"

code=$(get "$A/nope")
check "unknown path 404 json" [ "$code" = 404 ]
check "404 body" json 'd["error"] == "not found"'
code=$(get "$A/readyz" -X POST)
check "POST readyz 405" [ "$code" = 405 ]
check "405 Allow header" [ "$(header allow)" = "GET, HEAD" ]
code=$(get "$A/readyz" -I)
check "HEAD readyz 200" [ "$code" = 200 ]
check "HEAD has content-length" [ -n "$(header content-length)" ]
size=$(curl -s --max-time 5 -I -o /dev/null -w '%{size_download}' "$A/readyz")
check "HEAD has no body" [ "$size" = 0 ]
v=$(curl -s --max-time 5 --http2-prior-knowledge -o "$work/body" -w '%{http_version} %{http_code}' "$A/readyz")
check "h2c prior knowledge" [ "$v" = "2 200" ]
code=$(get "$A/metrics")
check "404 counted as path=other" grep -q '^etcd_agent_http_requests_total{path="other",code="404"} 1$' "$work/body"

# ---- probe load stays at the configured rate ---------------------------------------------------
status_calls() {
    curl -s --max-time 5 "$(cluster_metrics-url 0)/metrics" |
        awk '/^grpc_server_handled_total\{.*grpc_method="Status"/ {s += $NF} END {print s + 0}'
}
if command -v wrk >/dev/null; then
    before=$(status_calls)
    wrk -t2 -c64 -d5s "$A/readyz" >"$work/wrk.txt" 2>&1
    after=$(status_calls)
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    delta=$((after - before))
    echo "   wrk: $reqs requests to /readyz in 5 s; etcd member 0 served $delta Status calls"
    check "wrk made many requests" [ "${reqs:-0}" -gt 1000 ]
    in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
    check "probe load ~1/s during wrk (Status +$delta)" in_range "$delta" 2 15
else
    skip "probe load under wrk" "wrk not installed"
fi

# ---- readiness follows the local member --------------------------------------------------------
cluster_stop 0
check "readyz 503 with member 0 stopped" until_true 30 code_is "$A/readyz" 503
get "$A/readyz" >/dev/null
check "readyz names the failing check" json 'd["status"] == "failing" and d["checks"]["status"] != "ok"'
check "livez stays 200 while member 0 is briefly down" code_is "$A/livez" 200
cluster_start 0 || fail "restart member 0"
check "readyz 200 after member 0 returns" until_true 90 code_is "$A/readyz" 200

# ---- a hung member (SIGSTOP): probes time out, the agent keeps answering at once ------------------
cluster_pause 0
check "readyz 503 with member 0 hung" until_true 30 code_is "$A/readyz" 503
t=$(curl -s -o /dev/null --max-time 5 -w '%{time_total}' "$A/readyz")
check "agent answers fast while etcd hangs (${t}s)" python3 -c "import sys; sys.exit(0 if float('$t') < 1 else 1)"
check "livez 200 while member 0 hangs briefly" code_is "$A/livez" 200
cluster_resume 0
check "readyz 200 after member 0 resumes" until_true 60 code_is "$A/readyz" 200

# ---- the cluster table sees a killed member ------------------------------------------------------
members_verdict() {
    get "$A/members" >/dev/null && json "$1"
}
cluster_kill 2
check "members: killed member failing, recoverable" until_true 40 members_verdict \
    'd["verdict"]["failing"] == ["etcd-2"] and d["verdict"]["recoverable"] and d["verdict"]["quorum"]'
check "members: killed member has an error" json \
    '[m for m in d["members"] if m["name"] == "etcd-2"][0]["error"] is not None'
check "readyz still 200 with one other member down" code_is "$A/readyz" 200
cluster_start 2 || fail "restart member 2"
check "members: all healthy again" until_true 90 members_verdict 'd["verdict"]["failing"] == []'

# ---- quorum loss: readyz fails, livez does not ---------------------------------------------------
cluster_stop 1
cluster_stop 2
check "readyz 503 without quorum" until_true 60 code_is "$A/readyz" 503
live_steady=true
for _ in $(seq 1 10); do
    code_is "$A/livez" 200 || live_steady=false
    sleep 1
done
check "livez 200 through the quorum loss (10 s)" $live_steady
check "members: no quorum" until_true 30 members_verdict 'not d["verdict"]["quorum"] and not d["verdict"]["recoverable"]'
cluster_start 1 || fail "restart member 1"
cluster_start 2 || fail "restart member 2"
check "readyz 200 after quorum returns" until_true 90 code_is "$A/readyz" 200

# ---- learner promotion ---------------------------------------------------------------------------
peer3=$(cluster_alloc 3)
# etcd refuses member changes until every voter has been connected for 5 s ("unhealthy
# cluster"): members 1 and 2 just restarted.
add_learner() {
    cluster_etcdctl 0 member add etcd-3 --learner --peer-urls="$peer3" >"$work/add.txt" 2>&1 && return 0
    grep -q "unhealthy cluster" "$work/add.txt" || return 2
    return 1
}
if until_true 60 add_learner; then
    ok "member add --learner"
    cluster_start 3 existing "$ETCD_TEST_INITIAL_CLUSTER,etcd-3=$peer3" || fail "start member 3"
    port3=$(free_port)
    # The list every pod gets, the learner's own URL first: promote.c must not send
    # MemberPromote to the learner itself ("rpc not supported for learner") forever.
    start_agent agent3 3 "$port3" --cluster-endpoints "$(cluster_client-url 3),$ETCD_TEST_ENDPOINTS"
    is_voter() {
        cluster_etcdctl 0 member list -w json 2>/dev/null | python3 -c '
import json, sys
ms = [m for m in json.load(sys.stdin)["members"] if m.get("name") == "etcd-3"]
sys.exit(0 if ms and not ms[0].get("isLearner", False) else 1)'
    }
    check "agent promotes its learner" until_true 120 is_voter
    get "http://127.0.0.1:$port3/metrics" >/dev/null
    check "promote attempts counted" grep -qE '^etcd_agent_promote_attempts_total [1-9]' "$work/body"
    check "promotion logged" grep -q 'promoted' "$work"/agent-3-*.log
    get "http://127.0.0.1:$port3/status" >/dev/null
    check "/status shows the promotion" json 'd["promote"]["promoted"] and d["promote"]["attempts"] >= 1'
    check "promoted member is a voter in /status" until_true 30 eval \
        'get "http://127.0.0.1:$port3/status" >/dev/null && json "not d[\"status\"][\"is_learner\"]"' 
    check "promoted member becomes ready" until_true 60 code_is "http://127.0.0.1:$port3/readyz" 200
else
    fail "member add --learner" "$(cat "$work/add.txt")"
fi

# ---- the TLS listener: h2 via ALPN, client certificates required ------------------------------------
tport=$(free_port)
start_agent agent_tls 0 "$(free_port)" --tls-listen "127.0.0.1:$tport" \
    --tls-cert "$CLUSTER_DIR/node.crt" --tls-key "$CLUSTER_DIR/node.key" --tls-client-ca "$ETCD_TEST_CACERT"
T=https://127.0.0.1:$tport
tls_get() {
    curl -s --max-time 5 --cacert "$ETCD_TEST_CACERT" -o "$work/body" -w '%{http_version} %{http_code}' "$@"
}
tls_ready() { [ "$(tls_get --cert "$ETCD_TEST_CERT" --key "$ETCD_TEST_KEY" "$T/readyz")" = "2 200" ]; }
check "TLS listener: h2 + client cert -> 200" until_true 30 tls_ready
check "TLS listener: HTTP/1.1 + client cert -> 200" [ "$(tls_get --http1.1 --cert "$ETCD_TEST_CERT" --key "$ETCD_TEST_KEY" "$T/livez")" = "1.1 200" ]
v=$(tls_get "$T/readyz")
check "TLS listener: no client cert -> refused ($v)" [ "${v#* }" != 200 ]
# TLS 1.2: AEAD suites with forward secrecy only (testssl.sh's LUCKY13 finding: no CBC suites).
tls12_cipher() { # SUITE: the suite a TLS 1.2 client offering only SUITE ends up with ("0000": none)
    openssl s_client -connect "127.0.0.1:$tport" -tls1_2 -cipher "$1" -CAfile "$ETCD_TEST_CACERT" \
        -cert "$ETCD_TEST_CERT" -key "$ETCD_TEST_KEY" </dev/null 2>/dev/null |
        sed -n 's/^ *Cipher *: *//p' | head -1
}
for c in ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES128-SHA; do
    got=$(tls12_cipher "$c")
    check "TLS listener: TLS 1.2 client offering only CBC $c -> refused (${got:-no handshake})" [ "$got" != "$c" ]
done
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-CHACHA20-POLY1305; do
    got=$(tls12_cipher "$c")
    check "TLS listener: TLS 1.2 client offering $c -> accepted (${got:-no handshake})" [ "$got" = "$c" ]
done

# ---- graceful stop -------------------------------------------------------------------------------
kill -TERM "$agent0"
t0=$SECONDS
wait "$agent0"
rc=$?
check "SIGTERM exits 0 (rc $rc)" [ "$rc" = 0 ]
check "SIGTERM stops within 10 s" [ $((SECONDS - t0)) -le 10 ]

finish
