#!/usr/bin/env bash
# disconnect.sh - fault row "client disconnect mid-stream, 100 times": a client starts
# GET /snapshot over TLS, reads the first 64 KiB and hangs up, 100 times in a row (HTTP/1.1 and
# HTTP/2 alternating; a 429 while the previous snapshot is still being torn down is retried).
# Afterwards the agent's fds and RSS are back to baseline (no spool file or io_uring ring left),
# etcd's Snapshot streams all ended (grpc_server_started_total == handled_total for Snapshot),
# and the next snapshot is complete. Prints ok/FAIL per check, ends "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
FILL=$BUILD/tests/bench/bench_fill
need_bins "$AGENT" "$FILL"
N=${DISCONNECTS:-100}

cluster_up 1 >"$WORK/up.log" 2>&1 || { fail "cluster up" "$(tail -3 "$WORK/up.log")"; finish; }
quiet_jobs
C=$CLUSTER_DIR
"$FILL" "$(cluster_client-url 0)" "$C/ca.crt" "$C/client.crt" "$C/client.key" 64 65536 k \
    >"$WORK/fill.log" 2>&1 || { fail "fill" "$(tail -2 "$WORK/fill.log")"; finish; }
tp=$(free_port) pp=$(free_port)
"$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$C/ca.crt" --cert "$C/client.crt" \
    --key "$C/client.key" --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
    --tls-cert "$C/node.crt" --tls-key "$C/node.key" --tls-client-ca "$C/ca.crt" \
    --spool-dir "$WORK" >>"$WORK/agent.log" 2>&1 &
apid=$!
AGENT_PIDS+=("$apid")
check "agent ready" until_true 60 code_is "http://127.0.0.1:$pp/readyz" 200
T=https://127.0.0.1:$tp
curl -s --cacert "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key" -o "$WORK/warm.db" "$T/snapshot"
sleep 1
base_fd=$(fd_count "$apid") base_rss=$(rss_kb "$apid")
snap_streams() { # started handled, for etcd's Maintenance/Snapshot
    curl -s "$(cluster_metrics-url 0)/metrics" | awk '
        /^grpc_server_started_total\{.*grpc_method="Snapshot"/ {s += $NF}
        /^grpc_server_handled_total\{.*grpc_method="Snapshot"/ {h += $NF}
        END {print s + 0, h + 0}'
}

python3 - "$tp" "$C" "$N" >"$WORK/cut.out" 2>&1 <<'PY'
import socket, ssl, sys, time
port, c, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def ctx(alpn):
    x = ssl.create_default_context(cafile=c + "/ca.crt")
    x.load_cert_chain(c + "/client.crt", c + "/client.key")
    x.set_alpn_protocols([alpn])
    return x
h1, h2 = ctx("http/1.1"), ctx("h2")
def h2_request():
    # preface, empty SETTINGS, HEADERS (stream 1, END_STREAM|END_HEADERS) with literal fields
    def lit(name, value):
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    block = lit(b":method", b"GET") + lit(b":scheme", b"https") + lit(b":path", b"/snapshot") + lit(b":authority", b"x")
    hdr = len(block).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big")
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + hdr + block
cut = retried = 0
for i in range(n):
    for attempt in range(200):
        use2 = i % 2 == 1
        s = (h2 if use2 else h1).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")
        s.sendall(h2_request() if use2 else b"GET /snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        # HTTP/2 keeps the connection after a 429: a quiet connection means "not streaming"
        s.settimeout(3 if use2 else 10)
        try:
            while len(got) < 65536:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except TimeoutError:
            pass
        s.close()
        if b" 429 " in got[:64] or (use2 and len(got) < 65536):
            retried += 1
            time.sleep(0.1)
            continue
        cut += 1
        break
print("cut", cut, "retried", retried)
PY
check "$N snapshots started and cut mid-stream ($(cat "$WORK/cut.out"))" grep -q "^cut $N " "$WORK/cut.out"

leaky() { ls -l "/proc/$apid/fd" 2>/dev/null | grep -cE 'deleted|io_uring'; }
fds_back() { [ "$(fd_count "$apid")" -le $((base_fd + 2)) ] && [ "$(leaky)" = 0 ]; }
check "fds back to baseline (now $(fd_count "$apid"), baseline $base_fd), no spool or ring fd" until_true 30 fds_back
rss=$(rss_kb "$apid")
echo "   agent RSS: baseline $((base_rss / 1024)) MiB, after $N disconnects $((rss / 1024)) MiB ($rss kB)"
slack=8192
grep -q __asan_init "$AGENT" 2>/dev/null && slack=$((1024 * 1024)) # ASan's quarantine holds freed memory
check "RSS back near baseline (+$((slack / 1024)) MiB at most)" [ "$rss" -le $((base_rss + slack)) ]
streams_done() { read -r s h <<<"$(snap_streams)"; [ "$s" -gt 0 ] && [ "$s" = "$h" ]; }
check "etcd's Snapshot streams all ended ($(snap_streams))" until_true 30 streams_done
curl -s --cacert "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key" -o "$WORK/next.db" "$T/snapshot"
check "the next snapshot is complete" python3 -c '
import hashlib, sys
d = open(sys.argv[1], "rb").read()
sys.exit(0 if len(d) > 32 and hashlib.sha256(d[:-32]).digest() == d[-32:] else 1)' "$WORK/next.db"
check "no spool file left" eval '[ -z "$(ls "$WORK" | grep -i spool)" ]'
finish
