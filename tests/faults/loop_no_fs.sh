#!/usr/bin/env bash
# loop_no_fs.sh - the agent's event-loop thread makes no file-system call: the agent runs under
# `strace -f -y` with --snapshot-dir, --spool-dir and --data-dir (a copy of the member's data
# dir), every snapshot route is exercised (list, POST, a file with Range, HEAD, GET /snapshot
# fast and slow enough to spill, ?source=disk GET and HEAD), and once it is serving, the loop
# thread (the main thread: server_run) must show no open/stat/getdents/unlink/rename/fsync/
# ftruncate, and no read/write/close on a regular file other than its own stdout/stderr (the
# log). Skips (exit 77) without strace. Ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
need_bins "$AGENT" "$BUILD/tests/bench/bench_fill"
command -v strace >/dev/null || skip_all "strace not installed (make deps)"

cluster_up 1 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
"$BUILD/tests/bench/bench_fill" "$(cluster_client-url 0)" "$CLUSTER_DIR/ca.crt" \
    "$CLUSTER_DIR/client.crt" "$CLUSTER_DIR/client.key" 128 65536 k >"$WORK/fill.log" 2>&1 ||
    fail "fill etcd" "$(tail -2 "$WORK/fill.log")"
mkdir -p "$WORK/snaps" "$WORK/spool" "$WORK/dd"
cp -a "$(cluster_data-dir 0)/." "$WORK/dd/"

PORT=$(free_port)
strace -f -qq -y -o "$WORK/strace.out" \
    -e trace=open,openat,stat,lstat,newfstatat,statx,fstat,getdents64,unlink,unlinkat,rename,renameat,renameat2,fsync,fdatasync,ftruncate,read,pread64,readv,preadv,write,pwrite64,writev,pwritev,close,mkdir,mkdirat \
    "$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
    --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
    --listen "127.0.0.1:$PORT" --probe-interval 1s --name etcd-0 --allow-insecure-snapshot \
    --snapshot-dir "$WORK/snaps" --spool-dir "$WORK/spool" --data-dir "$WORK/dd" \
    >>"$WORK/agent.log" 2>&1 &
SPID=$!
AGENT_PIDS+=("$SPID")
U() { echo "http://127.0.0.1:$PORT$1"; }
check "agent serving under strace" until_true 60 code_is "$(U /readyz)" 200
APID=$(pgrep -P "$SPID" -x etcd-agent)
check "agent pid found ($APID)" [ -n "$APID" ]
MARK=$(wc -l <"$WORK/strace.out")

c=$(curl -s --max-time 60 -o "$WORK/body" -w '%{http_code}' -X POST "$(U /snapshots)")
check "POST /snapshots 200 ($c)" [ "$c" = 200 ]
NAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/body" 2>/dev/null)
check "GET /snapshots" code_is "$(U /snapshots)" 200
c=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -r 0-999 "$(U "/snapshots/$NAME")")
check "GET /snapshots/<name> with Range ($c)" [ "$c" = 206 ]
c=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -I "$(U "/snapshots/$NAME")")
check "HEAD /snapshots/<name> ($c)" [ "$c" = 200 ]
check "GET /snapshots/<missing>" code_is "$(U /snapshots/20200101T000000Z-rev1.db)" 404
check "GET /snapshot" code_is "$(U /snapshot)" 200
c=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' "$(U '/snapshot?source=disk')")
check "GET /snapshot?source=disk ($c)" [ "$c" = 200 ] || [ "$c" = 409 ]
c=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -I "$(U '/snapshot?source=disk')")
check "HEAD /snapshot?source=disk ($c)" [ "$c" = 200 ] || [ "$c" = 409 ]
# a client slower than etcd: the stream spills into --spool-dir and is read back
python3 - "$PORT" >"$WORK/slow.out" 2>&1 <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(60)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /snapshot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
n = 0
while True:
    c = s.recv(65536)
    if not c:
        break
    n += len(c)
    time.sleep(len(c) / 1500000)
print(n)
PY
check "slow GET /snapshot got the whole db ($(cat "$WORK/slow.out"))" [ "$(cat "$WORK/slow.out")" -gt 8000000 ]
check "the slow stream spilled" grep -q '"spilled_bytes":[1-9]' "$WORK/agent.log"
check "GET /metrics" code_is "$(U /metrics)" 200
sleep 1
kill -TERM "$APID" 2>/dev/null # strace ends with it
until_true 15 bash -c "! kill -0 $SPID 2>/dev/null" || stop_agents

# Lines of the loop thread (tid = pid) once serving; file calls other than its stdout/stderr.
tail -n +"$((MARK + 1))" "$WORK/strace.out" | awk -v t="$APID" '$1 == t' >"$WORK/loop.out"
grep -E '^[0-9]+ +(open|openat|stat|lstat|newfstatat|statx|getdents64|unlink|unlinkat|rename|renameat|renameat2|fsync|fdatasync|ftruncate|mkdir|mkdirat)\(' "$WORK/loop.out" >"$WORK/bad.out"
grep -E '^[0-9]+ +(read|pread64|readv|preadv|write|pwrite64|writev|pwritev|close|fstat)\([0-9]+</' "$WORK/loop.out" |
    grep -vE '\((1|2)</' | grep -vE '</dev/(null|pts|tty)' >>"$WORK/bad.out"
check "loop thread: $(wc -l <"$WORK/loop.out") traced calls while serving, no file-system call" [ ! -s "$WORK/bad.out" ]
head -5 "$WORK/bad.out"
finish
