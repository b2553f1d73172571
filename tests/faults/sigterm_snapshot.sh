#!/usr/bin/env bash
# sigterm_snapshot.sh - fault row "SIGTERM during a snapshot": the agent gets SIGTERM while it
# streams GET /snapshot (a fast HTTP/1.1 client, a slow HTTP/2 client that cannot finish within
# the 5 s grace period; a slow HTTP/1.1 client behaves the same and was dropped for time: curl
# drains the socket buffers at its limited rate) and while it saves POST /snapshots. Each time: the agent exits 0 within
# the grace period (+3 s slack); the client ends with either a complete snapshot (exit 0, the
# etcdctl-format sha256 trailer checks out) or an error exit and a file whose trailer does not
# check out - never a complete-looking truncated file; the snapshot dir holds no invalid *.db;
# after a restart the next snapshot is complete. Prints ok/FAIL, ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
FILL=$BUILD/tests/bench/bench_fill
need_bins "$AGENT" "$FILL"
GRACE_S=5

cluster_up 1 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
C=$CLUSTER_DIR
"$FILL" "$(cluster_client-url 0)" "$C/ca.crt" "$C/client.crt" "$C/client.key" 160 65536 k \
    >"$WORK/fill.log" 2>&1 || { fail "fill" "$(tail -2 "$WORK/fill.log")"; finish; }
mkdir -p "$WORK/snaps"

# agent_up: a fresh agent with a TLS listener (snapshots need client certificates).
agent_up() {
    local tp pp
    tp=$(free_port) pp=$(free_port)
    "$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$C/ca.crt" --cert "$C/client.crt" \
        --key "$C/client.key" --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
        --tls-cert "$C/node.crt" --tls-key "$C/node.key" --tls-client-ca "$C/ca.crt" \
        --snapshot-dir "$WORK/snaps" >>"$WORK/agent.log" 2>&1 &
    APID=$!
    AGENT_PIDS+=("$APID")
    T=https://127.0.0.1:$tp
    until_true 30 code_is "http://127.0.0.1:$pp/readyz" 200
}
# term_and_wait NAME: SIGTERM the agent, check exit 0 within the grace period.
term_and_wait() {
    local t0 rc ms
    t0=${EPOCHREALTIME/./}
    kill -TERM "$APID"
    wait "$APID"
    rc=$?
    ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
    echo "   $1: SIGTERM -> exit in $ms ms" >>"$WORK/agent.log"
    check "$1: agent exits 0 (rc $rc)" [ "$rc" = 0 ]
    check "$1: within the grace period (${ms} ms <= $((GRACE_S + 3)) s)" [ "$ms" -le $(((GRACE_S + 3) * 1000)) ]
}
# client_verdict NAME RC FILE: complete (rc 0, digest ok) or incomplete (rc != 0, digest bad).
client_verdict() {
    local name=$1 rc=$2 f=$3 size
    size=$(stat -c %s "$f" 2>/dev/null || echo 0)
    if [ "$rc" = 0 ]; then
        check "$name: client saw a complete transfer ($size bytes), and it is" digest_ok "$f"
    else
        check "$name: client saw an incomplete transfer (curl rc $rc, $size bytes), and it is" \
            eval '! digest_ok "$f"'
    fi
}
wait_bytes() { # FILE PID: until FILE has data (or the client ended)
    local i
    for i in $(seq 1 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.05
    done
}

# ---- fast HTTP/1.1 client ------------------------------------------------------------------------
agent_up || fail "agent up"
tls_curl --http1.1 -o "$WORK/fast.db" "$T/snapshot" 2>/dev/null &
cpid=$!
wait_bytes "$WORK/fast.db" "$cpid"
term_and_wait "fast HTTP/1.1 client"
wait "$cpid"
client_verdict "fast HTTP/1.1 client" $? "$WORK/fast.db"

# ---- slow HTTP/2 client: cannot finish within the grace period --------------------------------
agent_up || fail "agent up"
tls_curl --http2 --limit-rate 256K -o "$WORK/slow.db" "$T/snapshot" 2>/dev/null &
cpid=$!
wait_bytes "$WORK/slow.db" "$cpid"
term_and_wait "slow HTTP/2 client"
wait "$cpid"
crc=$?
client_verdict "slow HTTP/2 client" $crc "$WORK/slow.db"
check "slow HTTP/2 client: the transfer was cut (it could not finish in time)" [ "$crc" != 0 ]

# ---- a save to --snapshot-dir in flight --------------------------------------------------------
agent_up || fail "agent up"
tls_curl -X POST -o "$WORK/post.json" "$T/snapshots" 2>/dev/null &
cpid=$!
sleep 0.3
term_and_wait "POST /snapshots"
wait "$cpid"
bad_files=""
for f in "$WORK"/snaps/*.db; do
    [ -e "$f" ] || continue
    digest_ok "$f" || bad_files+=" $(basename "$f")"
done
check "POST /snapshots: no invalid *.db in the snapshot dir${bad_files:+ ($bad_files)}" [ -z "$bad_files" ]

# ---- the next snapshot after a restart ---------------------------------------------------------
agent_up || fail "agent up"
check "after a restart: no .part left in the snapshot dir" \
    eval '[ -z "$(ls "$WORK"/snaps/*.part 2>/dev/null)" ]'
tls_curl -o "$WORK/next.db" "$T/snapshot" 2>/dev/null
check "after a restart: the next snapshot is complete" digest_ok "$WORK/next.db"
tls_curl -X POST -o "$WORK/post2.json" "$T/snapshots" 2>/dev/null
check "after a restart: a saved snapshot works" grep -q '"name"' "$WORK/post2.json"
term_and_wait "idle"
! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/agent.log"
check "no sanitizer report in the agent's log" [ $? = 0 ]
finish
