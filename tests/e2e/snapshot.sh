#!/usr/bin/env bash
# snapshot.sh - end-to-end tests of the agent's snapshot routes against a real one-member etcd
# holding ~40 MB (640 values of 64 KiB): streamed snapshot restores without --skip-hash-check
# and serves the same keys, agrees with etcdctl's, zstd, HTTP/2 trailer, HEAD, 429, mTLS,
# slow client (spill, bounded RSS, etcd's stream ends early), client disconnect (no fd leak),
# etcd killed mid-stream, saved snapshots (POST/list/Range/traversal/retention/.part/ENOSPC/
# schedule), --no-io-uring, and the disk source (409 while etcd runs, restorable when stopped).
# Prints "ok <name>" / "FAIL <name>: why" and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
FILL=$BUILD/tests/bench/bench_fill
H2GET=$BUILD/tests/bench/bench_h2get
KEYS=640
VALUE_SIZE=65536
RSS_LIMIT_KB=$((16 * 1024))
# Under ASan (BUILD=build/asan) memory is the sanitizer's: the RSS bound is not checked.
grep -q __asan_init "$BUILD/etcd-agent" 2>/dev/null && RSS_LIMIT_KB=$((4 * 1024 * 1024))

bad() { fail "$@"; }

if [ ! -x "$AGENT" ] || [ ! -x "$FILL" ] || [ ! -x "$H2GET" ]; then
    bad setup "$AGENT, $FILL or $H2GET not built (make tests)"
    finish
fi

T=$WORK
BG_PIDS=()
MOUNTED=""
at_exit 'for p in "${BG_PIDS[@]}" "${AGENT_PIDS[@]}"; do kill -KILL "$p"; done'
at_exit '[ -n "${RESTORED_PID:-}" ] && kill -KILL "$RESTORED_PID"'
at_exit '[ -n "$MOUNTED" ] && umount "$MOUNTED"'

# start_snap_agent NAME EXTRA_FLAGS...: plain + TLS listeners; sets ${NAME}_PID/_PLAIN/_TLS/_LOG.
start_snap_agent() {
    local name=$1 pp tp
    shift
    read -r pp tp <<<"$(_cluster_free_ports 2)"
    "$AGENT" --endpoints "$(cluster_client-url 0)" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
        --tls-cert "$CLUSTER_DIR/node.crt" --tls-key "$CLUSTER_DIR/node.key" \
        --tls-client-ca "$CLUSTER_DIR/ca.crt" --data-dir "$(cluster_data-dir 0)" \
        "$@" >"$T/$name.log" 2>&1 &
    local pid=$!
    AGENT_PIDS+=("$pid")
    printf -v "${name}_PID" %s "$pid"
    printf -v "${name}_PLAIN" %s "http://127.0.0.1:$pp"
    printf -v "${name}_TLS" %s "https://127.0.0.1:$tp"
    local i
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/livez")" != 000 ] &&
            return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -5 "$T/$name.log" >&2
    return 1
}

# The offline snapshot tool: etcdutl (3.5+; 3.6 has no `etcdctl snapshot restore/status`), else
# etcdctl (3.4).
SNAP_TOOL=$(command -v etcdutl || command -v etcdctl)
# restore_and_count FILE DIR: restore (no skip), run etcd on it, print the key count; the restored
# keyspace (every key and value) goes to DIR.kv.
restore_and_count() {
    local file=$1 dir=$2 pp cp n
    read -r pp cp <<<"$(_cluster_free_ports 2)"
    ETCDCTL_API=3 "$SNAP_TOOL" snapshot restore "$file" --data-dir "$dir" --name r \
        --initial-cluster "r=http://127.0.0.1:$pp" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pp" >"$T/restore.log" 2>&1 || {
        tail -3 "$T/restore.log" >&2
        return 1
    }
    env -u ETCDCTL_API etcd --name r --data-dir "$dir" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
        --initial-cluster "r=http://127.0.0.1:$pp" >"$T/restored-etcd.log" 2>&1 &
    RESTORED_PID=$!
    n=""
    for _ in $(seq 1 100); do
        n=$(ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$cp" get k --prefix --keys-only \
            --consistency=s 2>/dev/null | grep -c '^k') && [ "$n" -gt 0 ] && break
        sleep 0.2
    done
    ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$cp" get "" --from-key --consistency=s \
        >"$dir.kv" 2>/dev/null # (a retry warning on stderr is not the keyspace)
    kill "$RESTORED_PID" 2>/dev/null
    wait "$RESTORED_PID" 2>/dev/null
    RESTORED_PID=""
    echo "${n:-0}"
}

metric() { # agent_url name_with_labels
    curl -s "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# fds a snapshot leaves behind if it leaks: spool files (unlinked) and io_uring rings
nleaky() { ls -l "/proc/$1/fd" 2>/dev/null | grep -cE 'deleted|io_uring'; }

# ---- setup -----------------------------------------------------------------------------------
if ! cluster_up 1 >/dev/null 2>"$T/cluster.err"; then
    bad setup "cluster did not come up: $(tail -2 "$T/cluster.err")"
    finish
fi
if ! "$FILL" "$(cluster_client-url 0)" "$CLUSTER_DIR/ca.crt" "$CLUSTER_DIR/client.crt" \
    "$CLUSTER_DIR/client.key" $KEYS $VALUE_SIZE k >"$T/fill.log" 2>&1; then
    bad setup "fill: $(tail -2 "$T/fill.log")"
    finish
fi
mkdir -p "$T/snaps"
touch "$T/snaps/20200101T000000Z-rev1.db.part" # left by a "crash"
if ! start_snap_agent A --snapshot-dir "$T/snaps" --snapshot-keep 2; then
    bad setup "agent did not start"
    finish
fi
# shellcheck disable=SC2154
echo "agent A pid $A_PID plain $A_PLAIN tls $A_TLS"

# ---- mTLS --------------------------------------------------------------------------------------
code=$(curl -s -o "$T/403.json" -w '%{http_code}' "$A_PLAIN/snapshot")
if [ "$code" = 403 ]; then ok "plain listener refuses /snapshot (403)"; else
    bad "plain listener refuses /snapshot (403)" "got $code"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CLUSTER_DIR/ca.crt" "$A_TLS/snapshot")
if [ "$code" = 000 ] || [ "$code" = 403 ]; then ok "TLS without client cert rejected ($code)"; else
    bad "TLS without client cert rejected" "got $code"; fi

# ---- streamed snapshot, restore, status agreement -----------------------------------------------
base_fds=$(nfds "$A_PID")
if tls_curl -D "$T/s1.h" -o "$T/s1.db" "$A_TLS/snapshot"; then
    size=$(stat -c %s "$T/s1.db")
    cl=$(awk 'tolower($1) == "content-length:" {print $2}' "$T/s1.h" | tr -d '\r')
    rev=$(awk 'tolower($1) == "x-etcd-revision:" {print $2}' "$T/s1.h" | tr -d '\r')
    if [ "$cl" = "$size" ] && [ $((size % 4096)) = 32 ] && [ -n "$rev" ] && digest_ok "$T/s1.db"; then
        ok "GET /snapshot: $size bytes, Content-Length, revision $rev, digest"
    else
        bad "GET /snapshot" "size $size content-length '$cl' revision '$rev' or digest wrong"
    fi
else
    bad "GET /snapshot" "curl failed: $(tail -3 "$T/A.log")"
fi
n=$(restore_and_count "$T/s1.db" "$T/r1")
if [ "$n" = $KEYS ]; then ok "restore (no skip-hash-check) serves $n keys"; else
    bad "restore (no skip-hash-check)" "restored etcd serves ${n:-?} keys, want $KEYS"; fi

# Against etcdctl's own snapshot of the same revision: what must be equal is the revision, the
# key count and the restored keyspace. Not `hash`: etcd 3.5 gives two snapshots of one revision
# different hashes (its snapshot status also prints a deprecation line: only the JSON is read).
cluster_etcdctl 0 snapshot save "$T/ref.db" >/dev/null 2>&1
snap_status() { # FILE: "revision N keys N" from `snapshot status -w json`
    ETCDCTL_API=3 "$SNAP_TOOL" snapshot status "$1" -w json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        s = json.loads(line); print("revision %d keys %d" % (s["revision"], s["totalKey"])); break'
}
s_ours=$(snap_status "$T/s1.db")
s_ref=$(snap_status "$T/ref.db")
n_ref=$(restore_and_count "$T/ref.db" "$T/rref")
if [ -n "$s_ours" ] && [ "$s_ours" = "$s_ref" ] && [ "$n_ref" = $KEYS ] && [ -s "$T/r1.kv" ] &&
    cmp -s "$T/r1.kv" "$T/rref.kv"; then
    ok "snapshot status agrees with etcdctl's snapshot ($s_ours; restored keyspaces equal, $(wc -c <"$T/r1.kv") bytes)"
else
    bad "snapshot status agrees with etcdctl's snapshot" "ours '$s_ours', etcdctl '$s_ref' ($(basename "$SNAP_TOOL")), restored keys $n_ref, keyspaces $(cmp "$T/r1.kv" "$T/rref.kv" 2>&1 | head -1)"
fi

# ---- HTTP/2 (curl's CLI does not show HTTP/2 trailers: bench_h2get checks the trailer) ---------
if tls_curl --http2 -D "$T/s2.h" -o "$T/s2.db" "$A_TLS/snapshot"; then
    proto=$(head -1 "$T/s2.h" | cut -d' ' -f1)
    if [ "$proto" = HTTP/2 ] && digest_ok "$T/s2.db"; then
        ok "HTTP/2 snapshot"
    else
        bad "HTTP/2 snapshot" "proto $proto or digest wrong"
    fi
else
    bad "HTTP/2 snapshot" "curl failed"
fi
if "$H2GET" 127.0.0.1 "${A_TLS##*:}" /snapshot "$CLUSTER_DIR/ca.crt" "$CLUSTER_DIR/client.crt" \
    "$CLUSTER_DIR/client.key" "$T/h2.db" >"$T/h2.out" 2>&1; then
    want=$(head -c -32 "$T/h2.db" | sha256sum | cut -d' ' -f1)
    got=$(awk '$1 == "trailer" && $2 == "x-etcd-snapshot-sha256:" {print $3}' "$T/h2.out")
    if [ -n "$got" ] && [ "$got" = "$want" ] && digest_ok "$T/h2.db"; then
        ok "HTTP/2 trailer x-etcd-snapshot-sha256 matches the body"
    else
        bad "HTTP/2 trailer" "trailer '$got', want $want"
    fi
else
    bad "HTTP/2 trailer" "bench_h2get failed: $(tail -2 "$T/h2.out")"
fi
if tls_curl --http1.1 -o "$T/s11.db" "$A_TLS/snapshot" && digest_ok "$T/s11.db"; then
    ok "HTTP/1.1 over TLS snapshot"
else
    bad "HTTP/1.1 over TLS snapshot" "curl failed or digest wrong"
fi

# ---- zstd --------------------------------------------------------------------------------------
if tls_curl -H 'Accept-Encoding: zstd' -D "$T/z.h" -o "$T/s.zst" "$A_TLS/snapshot" &&
    grep -qi '^content-encoding: zstd' "$T/z.h" && zstd -q -d -f "$T/s.zst" -o "$T/z.db" &&
    digest_ok "$T/z.db" && ETCDCTL_API=3 "$SNAP_TOOL" snapshot status "$T/z.db" >/dev/null 2>&1; then
    ok "zstd round trip ($(stat -c %s "$T/s.zst") -> $(stat -c %s "$T/z.db") bytes)"
else
    bad "zstd round trip" "see $T/z.h"
fi

# ---- HEAD --------------------------------------------------------------------------------------
before=$(metric "$A_PLAIN" 'etcd_agent_snapshots_total{result="ok"}')
if tls_curl -I -o /dev/null -D "$T/head.h" "$A_TLS/snapshot" && grep -q '^HTTP/[0-9.]* 200' "$T/head.h" &&
    grep -qi '^x-etcd-revision:' "$T/head.h" && grep -qi '^x-etcd-snapshot-size:' "$T/head.h" &&
    [ "$(metric "$A_PLAIN" 'etcd_agent_snapshots_total{result="ok"}')" = "$before" ]; then
    ok "HEAD /snapshot answers headers without a snapshot"
else
    bad "HEAD /snapshot" "$(tr -d '\r' <"$T/head.h" | head -5 | tr '\n' ' ')"
fi
if tls_curl --http1.1 -I -o /dev/null -D "$T/head1.h" "$A_TLS/snapshot" &&
    grep -q '^HTTP/1.1 200' "$T/head1.h" && grep -qi '^x-etcd-revision:' "$T/head1.h"; then
    ok "HEAD /snapshot over HTTP/1.1"
else
    bad "HEAD /snapshot over HTTP/1.1" "$(tr -d '\r' <"$T/head1.h" | head -5 | tr '\n' ' ')"
fi

# ---- concurrency: second request while one is in flight -> 429 ----------------------------------
# etcd is paused so the first request deterministically holds the slot (its Status call waits).
cluster_pause 0
tls_curl -o "$T/c1.db" "$A_TLS/snapshot" 2>"$T/c1.err" &
c1=$!
BG_PIDS+=("$c1")
for _ in $(seq 1 50); do
    [ "$(metric "$A_PLAIN" etcd_agent_snapshot_in_flight)" = 1 ] && break
    sleep 0.05
done
code=$(tls_curl -o /dev/null -D "$T/429.h" -w '%{http_code}' "$A_TLS/snapshot")
cluster_resume 0
wait $c1
c1rc=$?
if [ "$code" = 429 ] && grep -qi '^retry-after:' "$T/429.h" && [ $c1rc = 0 ] && digest_ok "$T/c1.db"; then
    ok "concurrent snapshot -> 429 with Retry-After; the first completes"
else
    bad "concurrent snapshot -> 429" "second got $code, first rc $c1rc"
fi

# ---- slow client: spill, etcd done early, RSS bounded --------------------------------------------
spill0=$(metric "$A_PLAIN" etcd_agent_snapshot_spill_bytes_total)
lines0=$(grep -c 'snapshot upstream done' "$T/A.log")
tls_curl --limit-rate 4M -o "$T/slow.db" "$A_TLS/snapshot" &
slow=$!
BG_PIDS+=("$slow")
maxrss=0 upstream_early=no
while kill -0 $slow 2>/dev/null; do
    r=$(rss_kb "$A_PID")
    [ -n "$r" ] && [ "$r" -gt "$maxrss" ] && maxrss=$r
    if [ $upstream_early = no ] && [ "$(grep -c 'snapshot upstream done' "$T/A.log")" -gt "$lines0" ]; then
        upstream_early=yes
    fi
    sleep 0.2
done
wait $slow
slowrc=$?
spill1=$(metric "$A_PLAIN" etcd_agent_snapshot_spill_bytes_total)
up_ms=$(grep 'snapshot upstream done' "$T/A.log" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("upstream_ms","?"))' 2>/dev/null)
if [ $slowrc = 0 ] && digest_ok "$T/slow.db" && [ $upstream_early = yes ] &&
    [ "${spill1:-0}" -gt "${spill0:-0}" ] && [ "$maxrss" -le $RSS_LIMIT_KB ]; then
    ok "slow client: etcd stream done in ${up_ms} ms while the client read on, spilled $((spill1 - spill0)) B, agent RSS max ${maxrss} KiB"
else
    bad "slow client" "rc $slowrc upstream_early $upstream_early spill $spill0->$spill1 maxrss ${maxrss} KiB (limit $RSS_LIMIT_KB)"
fi

# ---- client disconnect mid-stream ---------------------------------------------------------------
# The probe loop's own connections come and go, so the total may move by one or two; spool files
# and io_uring rings must all be gone.
tls_curl --limit-rate 1M --max-time 2 -o "$T/cut.db" "$A_TLS/snapshot" 2>/dev/null
cutrc=$?
for _ in $(seq 1 50); do
    [ "$(nleaky "$A_PID")" = 0 ] && [ "$(nfds "$A_PID")" -le $((base_fds + 2)) ] && break
    sleep 0.2
done
fds=$(nfds "$A_PID") leaky=$(nleaky "$A_PID")
if [ $cutrc != 0 ] && kill -0 "$A_PID" && [ "$leaky" = 0 ] && [ "$fds" -le $((base_fds + 2)) ] &&
    tls_curl -o "$T/after.db" "$A_TLS/snapshot" && digest_ok "$T/after.db"; then
    ok "client disconnect: agent keeps serving, no spool/ring fd left, fds $fds (baseline $base_fds)"
else
    bad "client disconnect" "curl rc $cutrc, fds $fds vs baseline $base_fds, spool/ring fds $leaky"
fi

# ---- saved snapshots ---------------------------------------------------------------------------
if [ ! -e "$T/snaps/20200101T000000Z-rev1.db.part" ]; then ok ".part removed at start"; else
    bad ".part removed at start" "still there"; fi
if tls_curl -X POST -o "$T/post.json" "$A_TLS/snapshots"; then
    name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$T/post.json" 2>/dev/null)
    if [ -n "$name" ] && [ -f "$T/snaps/$name" ] && digest_ok "$T/snaps/$name"; then
        ok "POST /snapshots -> $(cat "$T/post.json")"
    else
        bad "POST /snapshots" "$(cat "$T/post.json")"
    fi
else
    bad "POST /snapshots" "curl failed"
    name=""
fi
if [ -n "$name" ]; then
    tls_curl -o "$T/list.json" "$A_TLS/snapshots"
    if grep -q "\"$name\"" "$T/list.json"; then ok "GET /snapshots lists it"; else
        bad "GET /snapshots" "$(cat "$T/list.json")"; fi
    if tls_curl -o "$T/get.db" "$A_TLS/snapshots/$name" && cmp -s "$T/get.db" "$T/snaps/$name"; then
        ok "GET /snapshots/<name> serves the file"
    else bad "GET /snapshots/<name>" "differs"; fi
    fsize=$(stat -c %s "$T/snaps/$name")
    code=$(tls_curl -H 'Range: bytes=100-199' -o "$T/range" -w '%{http_code}' "$A_TLS/snapshots/$name")
    if [ "$code" = 206 ] && cmp -s "$T/range" <(tail -c +101 "$T/snaps/$name" | head -c 100); then
        ok "Range bytes=100-199 -> 206"
    else bad "Range" "code $code"; fi
    code=$(tls_curl -H 'Range: bytes=-32' -o "$T/range" -w '%{http_code}' "$A_TLS/snapshots/$name")
    if [ "$code" = 206 ] && cmp -s "$T/range" <(tail -c 32 "$T/snaps/$name"); then
        ok "Range bytes=-32 (the digest) -> 206"
    else bad "Range suffix" "code $code"; fi
    code=$(tls_curl -H "Range: bytes=$fsize-" -o /dev/null -w '%{http_code}' "$A_TLS/snapshots/$name")
    if [ "$code" = 416 ]; then ok "Range past the end -> 416"; else bad "Range past the end" "code $code"; fi
fi
bad_codes=""
for p in "/snapshots/..%2f..%2fetc%2fpasswd" "/snapshots/../snapshots" "/snapshots/20990101T000000Z-rev1.db" \
    "/snapshots/%2e%2e" "/snapshots/$name.part"; do
    code=$(tls_curl --path-as-is -o /dev/null -w '%{http_code}' "$A_TLS$p")
    [ "$code" = 404 ] || [ "$code" = 400 ] || bad_codes+=" $p:$code"
done
if [ -z "$bad_codes" ]; then ok "traversal and unknown names -> 404"; else bad "traversal" "$bad_codes"; fi
tls_curl -X POST -o /dev/null "$A_TLS/snapshots"
sleep 1.1 # names have 1 s resolution
tls_curl -X POST -o /dev/null "$A_TLS/snapshots"
cnt=$(ls "$T/snaps" | grep -c '\.db$')
if [ "$cnt" = 2 ]; then ok "--snapshot-keep 2 keeps 2"; else bad "--snapshot-keep 2" "$cnt files: $(ls "$T/snaps")"; fi

# ---- ENOSPC on a small tmpfs -------------------------------------------------------------------
mkdir -p "$T/small"
if mount -t tmpfs -o size=5m tmpfs "$T/small" 2>/dev/null; then
    MOUNTED=$T/small
    head -c 100000 /dev/urandom >"$T/small/20200101T000000Z-rev1.db"
    cp "$T/small/20200101T000000Z-rev1.db" "$T/old.db"
    if start_snap_agent B --snapshot-dir "$T/small" --spool-dir "$T" --allow-insecure-snapshot; then
        # shellcheck disable=SC2154
        code=$(curl -s -X POST -o "$T/enospc.json" -w '%{http_code}' "$B_PLAIN/snapshots")
        left=$(ls -A "$T/small")
        if [ "$code" = 507 ] && grep -q 'space' "$T/enospc.json" &&
            [ "$left" = 20200101T000000Z-rev1.db ] && cmp -s "$T/small/20200101T000000Z-rev1.db" "$T/old.db"; then
            ok "ENOSPC -> 507 ($(cat "$T/enospc.json")), no .part, older snapshot intact"
        else
            bad "ENOSPC" "code $code body $(cat "$T/enospc.json") dir: $left"
        fi
        # the plain listener serves snapshots with --allow-insecure-snapshot
        if curl -s -o "$T/insecure.db" "$B_PLAIN/snapshot" && digest_ok "$T/insecure.db"; then
            ok "--allow-insecure-snapshot serves on the plain listener"
        else bad "--allow-insecure-snapshot" "no valid snapshot"; fi
        kill "$B_PID"
        wait "$B_PID" 2>/dev/null
    else
        bad "ENOSPC" "agent B did not start"
    fi
    umount "$T/small" && MOUNTED=""
else
    skip "ENOSPC -> 507" "cannot mount a tmpfs here (not root?)"
    skip "--allow-insecure-snapshot serves on the plain listener" "it runs on the tmpfs of the ENOSPC check"
fi

# ---- --no-io-uring fallback and the schedule ---------------------------------------------------
mkdir -p "$T/sched"
if start_snap_agent C --no-io-uring --snapshot-dir "$T/sched" --snapshot-interval 2s --snapshot-keep 1 \
    --allow-insecure-snapshot; then
    # shellcheck disable=SC2154
    be=$(metric "$C_PLAIN" 'etcd_agent_io_backend{backend="syscalls"}')
    if curl -s --limit-rate 8M -o "$T/nouring.db" "$C_PLAIN/snapshot" && digest_ok "$T/nouring.db" && [ "$be" = 1 ]; then
        ok "--no-io-uring: syscalls backend, spilled snapshot valid"
    else bad "--no-io-uring" "backend metric '$be'"; fi
    for _ in $(seq 1 100); do
        [ "$(ls "$T/sched" | grep -c '\.db$')" -ge 1 ] && break
        sleep 0.2
    done
    sleep 2.5 # one more round: retention (--snapshot-keep 1) must drop the first
    kill "$C_PID"
    wait "$C_PID" 2>/dev/null
    n=$(ls "$T/sched" | grep -c '\.db$')
    f=$(ls "$T/sched" | grep '\.db$' | tail -1)
    if [ "$n" = 1 ] && digest_ok "$T/sched/$f"; then ok "--snapshot-interval took $f, keep 1"; else
        bad "--snapshot-interval" "$n snapshots in $T/sched: $(ls "$T/sched" | tr '\n' ' ')"; fi
else
    bad "--no-io-uring" "agent C did not start"
fi

# ---- etcd killed mid-stream -> incomplete transfer -----------------------------------------------
killed=no
for attempt in 1 2 3; do
    rm -f "$T/k.db"
    tls_curl -o "$T/k.db" "$A_TLS/snapshot" 2>/dev/null &
    k=$!
    BG_PIDS+=("$k")
    while kill -0 $k 2>/dev/null && [ ! -s "$T/k.db" ]; do :; done
    cluster_kill 0
    wait $k
    krc=$?
    ksize=$(stat -c %s "$T/k.db" 2>/dev/null || echo 0)
    cluster_start 0 >/dev/null 2>&1 && cluster_wait-healthy 0 >/dev/null 2>&1
    if [ $krc != 0 ]; then
        killed=yes
        break
    fi
    echo "  (attempt $attempt: etcd finished the stream before it was killed; again)"
done
if [ $killed = yes ] && ! digest_ok "$T/k.db"; then
    ok "etcd killed mid-stream -> curl rc $krc after $ksize bytes"
else
    bad "etcd killed mid-stream" "curl rc ${krc:-?}, $ksize bytes"
fi

# ---- disk source ------------------------------------------------------------------------------
code=$(tls_curl -o "$T/409.json" -w '%{http_code}' "$A_TLS/snapshot?source=disk")
if [ "$code" = 409 ]; then ok "source=disk refused while etcd runs ($(cat "$T/409.json"))"; else
    bad "source=disk refused while etcd runs" "got $code $(cat "$T/409.json")"; fi
cluster_stop 0
if tls_curl -o "$T/disk.db" "$A_TLS/snapshot?source=disk" && digest_ok "$T/disk.db"; then
    n=$(restore_and_count "$T/disk.db" "$T/r2")
    if [ "$n" = $KEYS ]; then ok "source=disk after stop: restores (no skip) with $n keys"; else
        bad "source=disk restore" "$n keys"; fi
else
    bad "source=disk after stop" "$(head -c 300 "$T/disk.db")"
fi
cluster_start 0 >/dev/null 2>&1

# ---- graceful stop; with an ASan build, no sanitizer report in any agent's log ------------------
if kill -0 "$A_PID" 2>/dev/null; then
    kill -TERM "$A_PID"
    wait "$A_PID"
    arc=$?
    if [ $arc = 0 ]; then ok "agent exits 0 on SIGTERM"; else bad "agent exits 0 on SIGTERM" "rc $arc"; fi
else
    bad "agent alive at the end" "agent A died: $(tail -3 "$T/A.log")"
fi
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
    bad "sanitizers" "$(grep -hE -A3 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | head -20)"
else
    ok "no sanitizer report in the agents' logs"
fi
finish
