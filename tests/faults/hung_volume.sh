#!/usr/bin/env bash
# hung_volume.sh - fault row "hung volume": --snapshot-dir, --spool-dir and --data-dir in turn
# on a FUSE mount (bindfs over a temp dir) whose server is stopped with SIGSTOP for 15 s, as a
# hung NFS or block volume behaves. While GET /snapshots, GET /snapshots/<name>, POST
# /snapshots, GET /snapshot (spilling to the spool) and GET /snapshot?source=disk hang on it,
# every /readyz must answer 200 within 1 s (the kubelet's probe timeout), a request that finds
# the file workers all busy gets 503 at once; after SIGCONT the hung requests have completed or
# failed cleanly (503 after 10 s), the agent serves again, and no fd leaked (/proc/PID/fd).
# Skips (exit 77) without bindfs or /dev/fuse. Ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
need_bins "$AGENT" "$BUILD/tests/bench/bench_fill"
command -v bindfs >/dev/null || skip_all "bindfs not installed (make deps)"
[ -c /dev/fuse ] && [ -w /dev/fuse ] || skip_all "no usable /dev/fuse"
command -v fusermount >/dev/null || skip_all "fusermount not installed"
HANG_S=${HANG_S:-15}
ONLY=${HUNG_ONLY:-snapshot-dir spool-dir data-dir} # a subset while debugging
want() { [[ " $ONLY " == *" $1 "* ]]; }

MNT=$WORK/mnt SRC=$WORK/src FUSE_PID=""
unmount() {
    [ -n "$FUSE_PID" ] && kill -CONT "$FUSE_PID" 2>/dev/null
    fusermount -u -z "$MNT" 2>/dev/null
    FUSE_PID=""
}
at_exit unmount
mount_fuse() { # [COPY_FROM [bindfs options]]: fresh source dir, mounted at $MNT; FUSE_PID
    rm -rf "$SRC" && mkdir -p "$SRC" "$MNT" || return 1
    [ -n "${1:-}" ] && cp -a "$1/." "$SRC/"
    bindfs --no-allow-other "${@:2}" "$SRC" "$MNT" 2>"$WORK/bindfs.err" || return 1
    FUSE_PID=$(pgrep -n -f "bindfs --no-allow-other.* $SRC $MNT")
    [ -n "$FUSE_PID" ] && mountpoint -q "$MNT"
}
mount_fuse || skip_all "bindfs cannot mount here: $(cat "$WORK/bindfs.err")"
unmount

cluster_up 1 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
# ~12 MB so that a slow client makes GET /snapshot spill past the 2 MiB ring
"$BUILD/tests/bench/bench_fill" "$(cluster_client-url 0)" "$CLUSTER_DIR/ca.crt" \
    "$CLUSTER_DIR/client.crt" "$CLUSTER_DIR/client.key" 192 65536 k >"$WORK/fill.log" 2>&1 ||
    fail "fill etcd" "$(tail -2 "$WORK/fill.log")"

PORT="" APID=""
agent_up() { # flags...
    PORT=$(free_port)
    start_agent APID 0 "$PORT" --allow-insecure-snapshot "$@"
    until_true 30 code_is "http://127.0.0.1:$PORT/readyz" 200
}
U() { echo "http://127.0.0.1:$PORT$1"; }
# bg NAME CURL-ARGS...: a request in the background; its code goes to $WORK/code.NAME
BGS=()
bg() {
    local name=$1
    shift
    (curl -s --max-time 60 -o "$WORK/out.$name" -w '%{http_code} %{time_total}' "$@" \
        >"$WORK/code.$name" 2>/dev/null) &
    BGS+=("$!")
}
# slow_get NAME PATH RATE: HTTP/1.1 GET read at RATE bytes/s through a 64 KiB receive buffer (a
# client slower than etcd: the agent spills); "CODE SECONDS BODY_BYTES" to $WORK/code.NAME
slow_get() {
    (python3 - "$PORT" "$2" "$3" >"$WORK/code.$1" 2>&1 <<'PY'
import socket, sys, time
port, path, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(60)
t0 = time.time()
s.connect(("127.0.0.1", port))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(65536)
head, body = data.split(b"\r\n\r\n", 1)
code = head.split()[1].decode()
n = len(body)
while True:
    chunk = s.recv(16384)
    if not chunk:
        break
    n += len(chunk)
    time.sleep(len(chunk) / rate)
print(code, round(time.time() - t0, 2), n)
PY
    ) &
    BGS+=("$!")
}
code_of() { awk '{print $1}' "$WORK/code.$1" 2>/dev/null; }
# probe for HANG_S seconds: every /readyz within 1 s
probes_ok() {
    local end=$((SECONDS + HANG_S)) n=0 bad=0 c
    while [ $SECONDS -lt $end ]; do
        c=$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$(U /readyz)")
        n=$((n + 1))
        [ "$c" = 200 ] || { bad=$((bad + 1)); echo "readyz: $c" >>"$WORK/probes.log"; }
        sleep 0.5
    done
    echo "$n probes, $bad late or failed" >>"$WORK/probes.log"
    PROBES="$n probes, $bad failed"
    [ "$bad" = 0 ] && [ "$n" -gt 5 ]
}
# clean CODE...: each background request ended with one of the codes (not a timeout: 000)
ended_in() {
    local name=$1 c
    shift
    c=$(code_of "$name")
    for want in "$@"; do [ "$c" = "$want" ] && return 0; done
    echo "$name: ${c:-none} ($(cat "$WORK/out.$name" 2>/dev/null | head -c 200))" >>"$WORK/probes.log"
    return 1
}
fd_base() { # the most fds over a second (the probe's etcd connections come and go)
    local m=0 c
    for _ in 1 2 3 4 5; do
        c=$(fd_count "$APID")
        [ "$c" -gt "$m" ] && m=$c
        sleep 0.2
    done
    echo "$m"
}
fds_back() { [ "$(fd_count "$APID")" -le "$1" ]; }
fd_list() { ls -l "/proc/$APID/fd" 2>/dev/null | awk 'NR > 1 {print $NF}' | sort | tr '\n' ' '; }

hang_round() { # LABEL: stop the FUSE server, probe, resume, wait for the requests
    local label=$1
    : >"$WORK/probes.log"
    check "$label: every /readyz 200 within 1 s while the volume hangs (${HANG_S}s)" probes_ok
    kill -CONT "$FUSE_PID"
    for p in "${BGS[@]}"; do wait "$p"; done
    BGS=()
}

# ---- --snapshot-dir ---------------------------------------------------------------------------
want snapshot-dir && mount_fuse || { want snapshot-dir && fail "mount"; }
if want snapshot-dir && agent_up --snapshot-dir "$MNT"; then
    curl -s --max-time 60 -o "$WORK/body" -X POST "$(U /snapshots)"
    NAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/body" 2>/dev/null)
    check "snapshot-dir: a snapshot saved before the hang ($NAME)" [ -n "$NAME" ]
    sleep 1.5 # the kernel's FUSE attribute cache (1 s) must not answer for the hung server
    FD0=$(fd_base)
    kill -STOP "$FUSE_PID"
    bg list "$(U /snapshots)"
    bg get -r 0-99 "$(U "/snapshots/$NAME")"
    bg post -X POST "$(U /snapshots)"
    sleep 1
    # 4 workers: two are stuck (list, get); 16 wait; beyond that 503 at once
    for i in $(seq 1 22); do bg "more$i" "$(U /snapshots)"; done
    sleep 1
    n503=0
    for i in $(seq 1 22); do [ "$(code_of "more$i")" = 503 ] && n503=$((n503 + 1)); done
    check "snapshot-dir: requests beyond the pool get 503 at once ($n503)" [ "$n503" -ge 1 ]
    hang_round "snapshot-dir"
    check "snapshot-dir: GET /snapshots ended cleanly ($(code_of list))" ended_in list 200 503
    check "snapshot-dir: GET /snapshots/<name> ended cleanly ($(code_of get))" ended_in get 206 503
    check "snapshot-dir: POST /snapshots ended cleanly ($(code_of post))" ended_in post 200 503
    check "snapshot-dir: a timed-out request got 503 after ~10 s" \
        awk '$1 == 503 && $2 >= 9 && $2 < 20 {f=1} END {exit !f}' "$WORK/code.list"
    check "snapshot-dir: serves again after the hang" until_true 15 code_is "$(U /snapshots)" 200
    check "snapshot-dir: no .part left" until_true 15 bash -c "! ls '$SRC' | grep -q '\.part$'"
    check "snapshot-dir: no fd leaked ($FD0 before, $(fd_count "$APID") after)" until_true 15 fds_back "$FD0"
    cat "$WORK/probes.log"
elif want snapshot-dir; then
    fail "snapshot-dir: agent up"
fi
stop_agents
unmount

# ---- --spool-dir: a slow client makes GET /snapshot spill into the volume ----------------------
# direct_io: reading the spill file back goes to the (stopped) server, not the page cache
want spool-dir && mount_fuse "" -o direct_io || { want spool-dir && fail "mount"; }
if want spool-dir && agent_up --spool-dir "$MNT"; then
    sleep 1.5 # as the other rounds: the agent's long-lived etcd connections are open by now
    FD0=$(fd_base) FDL0=$(fd_list)
    n=$(wc -w <<<"$FDL0")
    [ "$n" -gt "$FD0" ] && FD0=$n # the base is the most seen, the listing included
    slow_get stream /snapshot 500000
    sleep 3 # the ring is full: the stream spills into the volume, the client reads it back
    kill -STOP "$FUSE_PID"
    hang_round "spool-dir"
    check "spool-dir: GET /snapshot ended cleanly ($(cat "$WORK/code.stream"))" ended_in stream 200
    check "spool-dir: the whole snapshot arrived" \
        awk -v want="$(($(cat "$WORK/fill.log" >/dev/null; echo 0)))" '$3 > 12000000 {f=1} END {exit !f}' "$WORK/code.stream"
    check "spool-dir: serves again after the hang" until_true 15 code_is "$(U /readyz)" 200
    check "spool-dir: no fd leaked ($FD0 before, $(fd_count "$APID") after)" until_true 15 fds_back "$FD0"
    fds_back "$FD0" || echo "fds before: $FDL0; after: $(fd_list)"
    cat "$WORK/probes.log"
elif want spool-dir; then
    fail "spool-dir: agent up"
fi
stop_agents
unmount

# ---- --data-dir: GET /snapshot?source=disk on a copy of the member's data dir -------------------
want data-dir && mount_fuse "$(cluster_data-dir 0)" || { want data-dir && fail "mount"; }
if want data-dir && agent_up --data-dir "$MNT"; then
    sleep 1.5
    FD0=$(fd_base)
    kill -STOP "$FUSE_PID"
    bg disk "$(U '/snapshot?source=disk')"
    bg diskhead -I "$(U '/snapshot?source=disk')"
    hang_round "data-dir"
    # a copy taken while etcd ran: served (200) or refused (409), never hung
    check "data-dir: GET ?source=disk ended cleanly ($(code_of disk))" ended_in disk 200 409 503
    check "data-dir: HEAD ?source=disk ended cleanly ($(code_of diskhead))" ended_in diskhead 200 409 503
    check "data-dir: answers again after the hang" until_true 15 bash -c \
        "curl -s --max-time 5 -o /dev/null -w '%{http_code}' '$(U '/snapshot?source=disk')' | grep -qE '^(200|409)$'"
    check "data-dir: no fd leaked ($FD0 before, $(fd_count "$APID") after)" until_true 15 fds_back "$FD0"
    cat "$WORK/probes.log"
elif want data-dir; then
    fail "data-dir: agent up"
fi
stop_agents
unmount
finish
