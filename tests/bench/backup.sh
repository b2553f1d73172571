#!/usr/bin/env bash
# backup.sh - benchmark (make bench only): off-node backups (agent/backup.c) against the same
# work done with standard tools in sequence, on a one-member TLS etcd holding >= 500 MB of
# Kubernetes-like objects (bench_k8sfill: pods, configmaps, secrets as JSON; compresses ~4x
# like a real cluster's, unlike random values):
#   S3 (s3rver behind tests/s3's SigV4-verifying proxy):
#     agent: POST /backups (zstd -3 + age, parts uploaded while etcd streams), waited for;
#     tools: etcdctl snapshot save -> zstd -3 -> age -r -> aws s3 cp (Debian awscli);
#     wall, CPU (the agent's user+sys during the backup vs the tools' summed), the agent's peak
#     RSS (VmHWM, reset before), ratios against the goals (<= 0.5x wall, <= 0.3x CPU,
#     <= 32 MiB); the floors measured in the same run: etcd's send path (bench_snapfloor:
#     receive + verify + drop), zstd -3 of the db alone, and each tool's step.
#   restore from the store: reset-member --restore-from s3://.../ (download, age -d, zstd -d
#     on the fly, then the snapshot restore) vs aws s3 cp + age -d + zstd -d + etcdctl snapshot
#     restore by hand (goal <= 1.1x).
#   Azure (Azurite, tests/azure): agent vs etcdctl -> zstd -> age -> az storage blob upload
#     (Debian azure-cli; skipped with a note when it is not installed: `make bench` installs it).
# Each agent's first backup also downloads and checks the object (verification): it runs once
# unmeasured (warming etcd's db into the page cache for both sides), the second is measured.
# Timings are information, never pass/fail.
#
# Each side runs RUNS times (env BENCH_BACKUP_RUNS, default 3) in turn and the medians are compared
# (on 2 shared cores one run of either varies by +-10 %).
#
# usage: tests/bench/backup.sh [--build DIR] [--mb N]   (env BENCH_BACKUP_MB, default 500)
set -u
cd "$(dirname "$0")/../.."
BUILD=build MB=${BENCH_BACKUP_MB:-500} RUNS=${BENCH_BACKUP_RUNS:-3}
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--mb N]" >&2; exit 2 ;;
    esac
done
AGENT=$BUILD/etcd-agent RM=$BUILD/reset-member
FILL=$BUILD/tests/bench/bench_k8sfill FLOOR=$BUILD/tests/bench/bench_snapfloor
for f in "$AGENT" "$RM" "$FILL" "$FLOOR"; do
    [ -x "$f" ] || { echo "bench backup: $f missing (make tests)" >&2; exit 1; }
done
for t in etcdctl zstd age age-keygen; do
    command -v $t >/dev/null || { echo "bench backup: $t missing (make deps)" >&2; exit 1; }
done
AWS=/usr/bin/aws
[ -x $AWS ] || { echo "bench backup: Debian's awscli missing (make deps)" >&2; exit 1; }
AZ=/usr/bin/az

# shellcheck source=../cluster.sh
source tests/cluster.sh
T=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-backup.XXXXXX")
AGENT_PID="" S3_DIR="" AZ_DIR=""
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    [ -n "$S3_DIR" ] && tests/s3/server.sh stop "$S3_DIR"
    [ -n "$AZ_DIR" ] && tests/azure/server.sh stop "$AZ_DIR"
    cluster_down
    rm -rf "$T"
}
trap cleanup EXIT

# shellcheck source=lib.bash
source tests/bench/lib.bash
T_START=$(now)

echo "bench backup: etcd with ${MB} MB of Kubernetes-like objects; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ETCD_TEST_EXTRA_FLAGS="--quota-backend-bytes=$((8 * 1024 * 1024 * 1024))" cluster_up 1 >/dev/null ||
    { echo "cluster did not come up" >&2; exit 1; }
EP=$(cluster_client-url 0)
TLSF=(--cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key")
t0=$(now)
JOBS=4 pids=()
for s in $(seq 1 $JOBS); do
    "$FILL" "$EP" "$CLUSTER_DIR/ca.crt" "$CLUSTER_DIR/client.crt" "$CLUSTER_DIR/client.key" \
        $(((MB + JOBS - 1) / JOBS)) "$s" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { echo "fill failed" >&2; exit 1; }; done
db="$(cluster_data-dir 0)/member/snap/db"
echo "filled in $(calc "$(now) - $t0") s; db $(stat -c %s "$db") bytes"

age-keygen -o "$T/id.txt" 2>/dev/null
RCPT=$(age-keygen -y "$T/id.txt")
export ETCD_TEST_ENDPOINTS=$EP ETCD_TEST_CACERT=$CLUSTER_DIR/ca.crt \
    ETCD_TEST_CERT=$CLUSTER_DIR/client.crt ETCD_TEST_KEY=$CLUSTER_DIR/client.key
CURL=(curl -sS --cacert "$CLUSTER_DIR/ca.crt" --cert "$CLUSTER_DIR/client.crt"
    --key "$CLUSTER_DIR/client.key")

# start_agent URL: an agent beside member 0 backing up to URL (zstd -3, age to RCPT)
start_agent() {
    local pp tp
    read -r pp tp <<<"$(_cluster_free_ports 2)"
    "$AGENT" --endpoints "$EP" "${TLSF[@]}" --listen "127.0.0.1:$pp" --tls-listen "127.0.0.1:$tp" \
        --tls-cert "$CLUSTER_DIR/node.crt" --tls-key "$CLUSTER_DIR/node.key" \
        --tls-client-ca "$CLUSTER_DIR/ca.crt" --data-dir "$(cluster_data-dir 0)" --spool-dir "$T" \
        --backup-url "$1" --backup-recipient "$RCPT" --backup-compress-level 3 \
        >"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/livez")" != 000 ] && break
        sleep 0.1
    done
    POST_URL="https://127.0.0.1:$tp/backups"
}
stop_agent() { kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=""; }
jnum() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$@"; }

# agent_backup LABEL: a warm-up POST /backups, then RUNS measured ones -> the medians A_WALL
# A_CPU, the highest A_RSS (KiB)
agent_backup() {
    "${CURL[@]}" -o "$T/post.json" -X POST "$POST_URL" || { echo "$1: warm-up POST failed" >&2; exit 1; }
    grep -q '"object_sha256"' "$T/post.json" || { echo "$1: warm-up: $(cat "$T/post.json")" >&2; exit 1; }
    local walls=() cpus=() rss=0 r
    for r in $(seq 1 "$RUNS"); do
        agent_backup_once "$1"
        walls+=("$A_WALL") cpus+=("$A_CPU")
        [ "$A_RSS" -gt "$rss" ] && rss=$A_RSS
    done
    A_WALL=$(median "${walls[@]}") A_CPU=$(median "${cpus[@]}") A_RSS=$rss
    printf '  agent, median of %d: %.2f s wall, %.2f s CPU, peak RSS %d KiB\n' "$RUNS" "$A_WALL" "$A_CPU" "$A_RSS"
}

# agent_backup_once LABEL: one measured POST /backups -> A_WALL A_CPU A_RSS (KiB), $T/post.json
agent_backup_once() {
    echo 5 >"/proc/$AGENT_PID/clear_refs" # reset VmHWM
    local c0 t0 t1
    c0=$(ticks "$AGENT_PID")
    t0=$(now)
    "${CURL[@]}" -o "$T/post.json" -X POST "$POST_URL" || { echo "$1: POST failed" >&2; exit 1; }
    t1=$(now)
    grep -q '"object_sha256"' "$T/post.json" || { echo "$1: $(cat "$T/post.json")" >&2; exit 1; }
    A_WALL=$(calc "$t1 - $t0")
    A_CPU=$(calc "($(ticks "$AGENT_PID") - $c0) / $HZ")
    A_RSS=$(awk '/^VmHWM/ {print $2}' "/proc/$AGENT_PID/status")
    A_OBJ=$(jnum "$T/post.json" object_size)
    printf '  agent: %.2f s wall, %.2f s CPU, peak RSS %d KiB; object %d bytes in %d parts; etcd stream done at %.2f s, first part stored at %.2f s (%d parts during the stream)\n' \
        "$A_WALL" "$A_CPU" "$A_RSS" "$A_OBJ" "$(jnum "$T/post.json" parts)" \
        "$(calc "$(jnum "$T/post.json" stream_ms) / 1000")" \
        "$(calc "$(jnum "$T/post.json" first_part_ms) / 1000")" "$(jnum "$T/post.json" parts_in_stream)"
}

# step NAME CMD...: one tool step under /usr/bin/time; adds to S_WALL/S_CPU, prints a line
step() {
    local name=$1 e u s m
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$@" >/dev/null 2>"$T/step.err" ||
        { echo "$name failed: $(tail -3 "$T/step.err")" >&2; exit 1; }
    read -r e u s m <"$T/time"
    S_WALL=$(calc "$S_WALL + $e")
    S_CPU=$(calc "$S_CPU + $u + $s")
    printf '    %-26s %6.2f s wall %6.2f s CPU %7d KiB\n' "$name" "$e" "$(calc "$u + $s")" "$m"
    eval "STEP_${name%% *}=$e STEPCPU_${name%% *}=$(calc "$u + $s")"
}

# tools UPLOAD_NAME UPLOAD_CMD...: the chain in sequence RUNS times -> the medians T_WALL T_CPU
tools() {
    local walls=() cpus=() r
    for r in $(seq 1 "$RUNS"); do
        tools_once "$@"
        walls+=("$T_WALL") cpus+=("$T_CPU")
    done
    T_WALL=$(median "${walls[@]}") T_CPU=$(median "${cpus[@]}")
    printf '  tools, median of %d: %.2f s wall, %.2f s CPU\n' "$RUNS" "$T_WALL" "$T_CPU"
}

tools_once() {
    local upname=$1
    shift
    S_WALL=0 S_CPU=0
    local t0
    t0=$(now)
    local c_before
    step "etcdctl snapshot save" env ETCDCTL_API=3 etcdctl --endpoints "$EP" "${TLSF[@]}" \
        snapshot save "$T/t.db"
    c_before=$S_CPU
    step "zstd -3" zstd -q -3 -f "$T/t.db" -o "$T/t.db.zst"
    ZSTD_CPU=$(calc "$S_CPU - $c_before")
    step "age -r" age -r "$RCPT" -o "$T/t.db.zst.age" "$T/t.db.zst"
    step "$upname" "$@"
    T_WALL=$(calc "$(now) - $t0")
    T_CPU=$S_CPU
    printf '  tools in sequence: %.2f s wall (steps %.2f s), %.2f s CPU\n' "$T_WALL" "$S_WALL" "$T_CPU"
}

ratios() { # WHAT
    printf '  %s: wall %.2f s vs %.2f s = %.2fx (goal <= 0.5); CPU %.2f s vs %.2f s = %.2fx (goal <= 0.3); agent peak RSS %.1f MiB (goal <= 32)\n' \
        "$1" "$A_WALL" "$T_WALL" "$(calc "$A_WALL / $T_WALL")" "$A_CPU" "$T_CPU" \
        "$(calc "$A_CPU / $T_CPU")" "$(calc "$A_RSS / 1024")"
    printf '    (CPU floor: zstd -3 alone = %.2fx the tools'"'"' CPU; the agent net of it: %.2fx)\n' \
        "$(calc "$ZSTD_CPU / $T_CPU")" "$(calc "($A_CPU - $ZSTD_CPU) / $T_CPU")"
}

# ---- S3 -------------------------------------------------------------------------------------
S3ENV=$(tests/s3/server.sh start) || { echo "S3 test server did not start" >&2; exit 1; }
eval "$S3ENV"
S3_DIR=$S3_TEST_DIR
start_agent "s3://$S3_TEST_BUCKET/agent"
echo "S3 (s3rver behind the SigV4-verifying proxy), zstd -3 + age:"
agent_backup s3
tools "aws s3 cp" $AWS --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "$T/t.db.zst.age" \
    "s3://$S3_TEST_BUCKET/tools/t.db.zst.age"
stop_agent
S3_A_WALL=$A_WALL S3_T_WALL=$T_WALL S3_A_CPU=$A_CPU S3_T_CPU=$T_CPU S3_A_RSS=$A_RSS
echo "  floors, same run:"
fl=$("$FLOOR") || { echo "bench_snapfloor failed" >&2; exit 1; }
FLOOR_WALL=$(calc "$(echo "$fl" | sed -n 's/.*wall_ms=\([0-9.]*\).*/\1/p') / 1000")
printf '    etcd send path (bench_snapfloor: receive, verify, drop): %.2f s wall\n' "$FLOOR_WALL"
# cpu_of CMD...: the user+sys seconds of CMD
cpu_of() {
    /usr/bin/time -f "%U %S" -o "$T/time" "$@" >/dev/null || { echo "$* failed" >&2; exit 1; }
    read -r u s <"$T/time"
    calc "$u + $s"
}
# The digests the work needs, each computed alone: sha256 of the db (etcd's digest, checked;
# etcdctl checks it too), and over the object Content-MD5 and SigV4's payload sha256 (plain
# HTTP) of each part and the manifest's object_sha256.
DB_SHA_CPU=$(cpu_of openssl dgst -sha256 "$T/t.db")
DGST_CPU=$(cpu_of sh -c 'openssl dgst -md5 "$1" && openssl dgst -sha256 "$1" && openssl dgst -sha256 "$1"' \
    sh "$T/t.db.zst.age")
t0=$(now)
zstd -q -3 -c "$T/t.db" >/dev/null
ZSTD_WALL=$(calc "$(now) - $t0")
printf '    zstd -3 of the db to /dev/null (one core): %.2f s; age of its output: %.2f s\n' "$ZSTD_WALL" "$STEP_age"
printf '    the store: aws s3 cp of the finished object: %.2f s\n' "$STEP_aws"
printf '    CPU floor: zstd -3 alone %.2f s = %.2fx the tools'"'"' CPU (the agent compresses every byte too); wall floor: max(etcd send, the store'"'"'s upload) %.2f s = %.2fx the tools'"'"' wall\n' \
    "$ZSTD_CPU" "$(calc "$ZSTD_CPU / $S3_T_CPU")" "$(calc "(($FLOOR_WALL > $STEP_aws) ? $FLOOR_WALL : $STEP_aws)")" \
    "$(calc "(($FLOOR_WALL > $STEP_aws) ? $FLOOR_WALL : $STEP_aws) / $S3_T_WALL")"
# What no backup of this kind can skip, each step measured alone (and without receiving etcd's
# stream: TLS, HTTP/2 and the socket are left out, so this is below the true floor). The goal's
# 0.3x lies beyond reach when this sum exceeds 0.3x the tools' CPU.
WORK_CPU=$(calc "$DB_SHA_CPU + $ZSTD_CPU + $STEPCPU_age + $DGST_CPU")
printf '    CPU of the work itself, each step alone: sha256 of the db %.2f + zstd -3 %.2f + age %.2f + the object'"'"'s md5 + 2x sha256 %.2f = %.2f s = %.2fx the tools'"'"' CPU; the agent (which also receives etcd'"'"'s stream over TLS): %.2f s = %.2fx that sum\n' \
    "$DB_SHA_CPU" "$ZSTD_CPU" "$STEPCPU_age" "$DGST_CPU" "$WORK_CPU" "$(calc "$WORK_CPU / $S3_T_CPU")" \
    "$S3_A_CPU" "$(calc "$S3_A_CPU / $WORK_CPU")"
ratios "S3 backup"

# ---- restore from the store -----------------------------------------------------------------
echo "restore from S3 (the agent's newest backup):"
newest=$($AWS --endpoint-url "$AWS_ENDPOINT_URL" s3 ls --recursive "s3://$S3_TEST_BUCKET/agent/" |
    awk '{print $4}' | grep '\.db\.zst\.age$' | sort | tail -1)
rm -rf "$T"/t.db*
read -r sp sc <<<"$(_cluster_free_ports 2)"
r_walls=() h_walls=()
for r in $(seq 1 "$RUNS"); do
    mkdir -p "$T/rm"
    t0=$(now)
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$RM" --name etcd-x --data-dir "$T/rm/data" \
        --peer-url "https://127.0.0.1:$sp" --initial-cluster "etcd-x=https://127.0.0.1:$sp" \
        --endpoints "https://127.0.0.1:$sc" "${TLSF[@]}" --state-file "$T/rm/state" \
        --env-file "$T/rm/env" --timeout 2s --restore-from "s3://$S3_TEST_BUCKET/agent/" \
        --restore-identity "$T/id.txt" >"$T/rm.out" 2>"$T/rm.err" ||
        { echo "reset-member restore failed: $(tail -3 "$T/rm.err")" >&2; exit 1; }
    R_WALL=$(calc "$(now) - $t0")
    read -r _ u s m <"$T/time"
    grep -q '"action":"restore"' "$T/rm.out" || { echo "reset-member did not restore: $(cat "$T/rm.out")" >&2; exit 1; }
    printf '  reset-member --restore-from s3://.../: %.2f s wall, %.2f s CPU (itself), %d KiB (%s)\n' \
        "$R_WALL" "$(calc "$u + $s")" "$m" "$(grep -o '"\(fetch\|validate\|restore\)_ms":[0-9]*' "$T/rm.out" | tr '\n' ' ')"
    rm -rf "$T/rm"
    S_WALL=0 S_CPU=0
    t0=$(now)
    step "aws s3 cp" $AWS --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "s3://$S3_TEST_BUCKET/$newest" "$T/r.age"
    step "age -d" age -d -i "$T/id.txt" -o "$T/r.zst" "$T/r.age"
    step "zstd -d" zstd -q -d -f "$T/r.zst" -o "$T/r.db"
    step "etcdctl snapshot restore" env ETCDCTL_API=3 etcdctl snapshot restore "$T/r.db" \
        --data-dir "$T/byhand" --name etcd-x --initial-cluster "etcd-x=https://127.0.0.1:$sp" \
        --initial-advertise-peer-urls "https://127.0.0.1:$sp"
    H_WALL=$(calc "$(now) - $t0")
    printf '  by hand in sequence: %.2f s wall, %.2f s CPU\n' "$H_WALL" "$S_CPU"
    rm -rf "$T"/r.* "$T/byhand"
    r_walls+=("$R_WALL") h_walls+=("$H_WALL")
done
R_WALL=$(median "${r_walls[@]}") H_WALL=$(median "${h_walls[@]}")
printf '  restore, medians of %d: %.2f s vs %.2f s = %.2fx (goal <= 1.1); floor: etcdctl snapshot restore alone %.2f s\n' \
    "$RUNS" "$R_WALL" "$H_WALL" "$(calc "$R_WALL / $H_WALL")" "$STEP_etcdctl"
RESTORE_RATIO=$(calc "$R_WALL / $H_WALL")
tests/s3/server.sh stop "$S3_DIR"
S3_DIR=""

# ---- Azure ----------------------------------------------------------------------------------
AZ_LINE="Azure: skipped"
if [ ! -x $AZ ]; then
    echo "Azure: skipped: Debian's azure-cli is not installed (make bench installs it)"
elif ! AZENV=$(tests/azure/server.sh start); then
    echo "Azure: skipped: Azurite did not start"
else
    eval "$AZENV"
    AZ_DIR=$AZURE_TEST_DIR
    start_agent "azure://$AZURE_STORAGE_ACCOUNT/$AZURE_TEST_CONTAINER/agent"
    echo "Azure (Azurite behind tests/azure's proxy), zstd -3 + age:"
    agent_backup azure
    CONN="DefaultEndpointsProtocol=http;AccountName=$AZURE_STORAGE_ACCOUNT;AccountKey=$AZURE_STORAGE_KEY;BlobEndpoint=$AZURE_STORAGE_BLOB_ENDPOINT"
    tools "az storage blob upload" env AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CONFIG_DIR="$T/az" \
        $AZ storage blob upload --only-show-errors --connection-string "$CONN" \
        -c "$AZURE_TEST_CONTAINER" -n tools/t.db.zst.age -f "$T/t.db.zst.age" --overwrite
    stop_agent
    ratios "Azure backup"
    AZ_LINE=$(printf 'Azure backup %.2fx wall, %.2fx CPU, RSS %.1f MiB' "$(calc "$A_WALL / $T_WALL")" \
        "$(calc "$A_CPU / $T_CPU")" "$(calc "$A_RSS / 1024")")
    rm -rf "$T"/t.db*
fi
printf 'summary: S3 backup %.2fx wall (<= 0.5), %.2fx CPU (<= 0.3; the work itself %.2fx), RSS %.1f MiB (<= 32); restore %.2fx (<= 1.1); %s\n' \
    "$(calc "$S3_A_WALL / $S3_T_WALL")" "$(calc "$S3_A_CPU / $S3_T_CPU")" "$(calc "$WORK_CPU / $S3_T_CPU")" "$(calc "$S3_A_RSS / 1024")" \
    "$RESTORE_RATIO" "$AZ_LINE"
echo "bench backup took $(calc "$(now) - $T_START") s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
