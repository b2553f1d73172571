#!/usr/bin/env bash
# restore_store.sh - reset-member --restore-from a backup store end to end: a real etcd
# snapshot laid out as the agent's backups (PREFIX/<cluster ID>/<time>-rev<N>.db + manifest) in
# an S3 server (s3rver behind the SigV4-verifying proxy, tests/s3/server.sh) and in a directory
# (file://). The newest COMPLETE backup is picked (a newer object without a manifest, or whose
# manifest's size differs, is skipped), restored as a one-member cluster, and recorded (object,
# sha256) in the marker; a rerun keeps even with the store gone. A full object URL restores
# without a manifest (uploaded with the AWS CLI). Refused with nothing touched: tampered object
# (sha256 differs from its manifest), truncated object, unreachable store, wrong secret. A
# .zst.age object made with zstd + age -r restores with --restore-identity (not with another).
# usage: BUILD=build tests/e2e/restore_store.sh     Prints ok/FAIL lines, "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RM=$BUILD/reset-member
AWS=/usr/bin/aws

# shellcheck source=../cluster.sh
source "$ROOT/tests/cluster.sh"

passed=0 failed=0 WHY="" OUT="" RC=0
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/restore-store-e2e.XXXXXX")
SNAP=$LOGDIR/snap.db

cleanup() {
    [ -n "${S3_TEST_DIR:-}" ] && tests/s3/server.sh stop "$S3_TEST_DIR"
    cluster_down >/dev/null 2>&1
    if [ -n "${E2E_KEEP_LOGS:-}" ]; then echo "logs kept in $LOGDIR"; else rm -rf "$LOGDIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { WHY="$*"; return 1; }
jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get(sys.argv[1], ""))' "$1"; }

# restore into a scratch one-member cluster (nothing runs: the restore needs no live cluster)
scratch_rm() { # dir [flags]
    local d=$1
    shift
    OUT=$("$RM" --name etcd-x --data-dir "$d/data" --peer-url "https://127.0.0.1:$SCRATCH_PEER" \
        --initial-cluster "etcd-x=https://127.0.0.1:$SCRATCH_PEER" \
        --endpoints "https://127.0.0.1:$SCRATCH_CLIENT" --cacert "$CLUSTER_DIR/ca.crt" \
        --cert "$CLUSTER_DIR/client.crt" --key "$CLUSTER_DIR/client.key" \
        --state-file "$d/state" --env-file "$d/env" --timeout 2s "$@" 2>>"$LOGDIR/reset-member.log")
    RC=$?
    echo "scratch $*: rc=$RC $OUT" >>"$LOGDIR/reset-member.log"
}

expect_action() { # action rc
    local got
    got=$(jget action <<<"$OUT")
    [ "$got" = "$1" ] && [ "$RC" = "$2" ] || die "action '$got' rc $RC (want $1 rc $2): $OUT"
}

untouched() { # dir
    [ ! -e "$1/data" ] && [ ! -e "$1/data.restore-marker" ] && [ ! -e "$1/data.restore-download" ] &&
        [ ! -e "$1/data.restore-staging" ] || die "something was touched in $1: $(ls -a "$1")"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
trailer() { tail -c 32 "$1" | od -An -tx1 | tr -d ' \n'; }

manifest() { # object-file rev [object_size override] [object_sha256 override]
    printf '{"db_sha256":"%s","object_sha256":"%s","object_size":%s,"revision":%s,"member":"etcd-0","etcd_version":"3.4","compression":"none","encryption":"none","took_ms":12}\n' \
        "$(trailer "$1")" "${4:-$(sha "$1")}" "${3:-$(stat -c %s "$1")}" "$2"
}

# the layout, in a local directory (copied as is to the S3 bucket and used by file://)
make_layout() { # dir
    local d=$1
    mkdir -p "$d/00000000000000aa" "$d/00000000000000bb"
    cp "$SNAP" "$d/00000000000000aa/20261201T000000Z-rev10.db"
    manifest "$SNAP" 10 >"$d/00000000000000aa/20261201T000000Z-rev10.db.manifest.json"
    cp "$SNAP" "$d/00000000000000bb/20261202T000000Z-rev20.db"
    manifest "$SNAP" 20 >"$d/00000000000000bb/20261202T000000Z-rev20.db.manifest.json"
    head -c 1000 /dev/urandom >"$d/00000000000000bb/20261203T000000Z-rev30.db" # no manifest
    cp "$SNAP" "$d/00000000000000bb/20261203T010000Z-rev31.db"
    manifest "$SNAP" 31 12345 >"$d/00000000000000bb/20261203T010000Z-rev31.db.manifest.json"
    echo "not a backup" >"$d/00000000000000bb/notes.txt"
}

check_restored() { # dir object
    local d=$1 obj=$2
    expect_action restore 0 || return 1
    grep -qx "object=$obj" "$d/data.restore-marker" || die "marker object: $(cat "$d/data.restore-marker")" || return 1
    grep -qx "object_sha256=$(sha "$SNAP")" "$d/data.restore-marker" || die "marker object_sha256" || return 1
    grep -qx "sha256=$(trailer "$SNAP")" "$d/data.restore-marker" || die "marker sha256" || return 1
    [ -s "$d/data/member/snap/db" ] || die "no db restored" || return 1
    tail -n 2 "$LOGDIR/reset-member.log" | grep -q "\"object\":\"$obj\"" ||
        die "the log line has no restore.object" || return 1
    ! ls "$d"/data.restore-download "$d"/data.restore-staging >/dev/null 2>&1 || die "leftovers"
}

s_s3_newest() {
    local d=$LOGDIR/s3new
    mkdir -p "$d"
    scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/backups/"
    check_restored "$d" 00000000000000bb/20261202T000000Z-rev20.db || return 1
    # the rerun keeps, even with the store unreachable: peers and reruns never read the store
    AWS_ENDPOINT_URL=http://127.0.0.1:9 scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/backups/"
    expect_action keep 0
}

s_s3_object_without_manifest() {
    local d=$LOGDIR/s3obj
    mkdir -p "$d"
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors "$SNAP" \
        "s3://$S3_TEST_BUCKET/manual/etcd-snapshot.db" || die "aws s3 cp" || return 1
    scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/manual/etcd-snapshot.db"
    check_restored "$d" etcd-snapshot.db
}

s_file_newest() {
    local d=$LOGDIR/filenew
    mkdir -p "$d"
    scratch_rm "$d" --restore-from "file://$LOGDIR/layout/"
    check_restored "$d" 00000000000000bb/20261202T000000Z-rev20.db
}

s_refuse_tampered() {
    local d=$LOGDIR/tamper o=00000000000000cc/20261204T000000Z-rev40.db
    mkdir -p "$d" "$LOGDIR/bad/00000000000000cc"
    cp "$SNAP" "$LOGDIR/bad/$o"
    manifest "$SNAP" 40 "" "$(printf '0%.0s' $(seq 64))" >"$LOGDIR/bad/$o.manifest.json"
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors --recursive "$LOGDIR/bad/" \
        "s3://$S3_TEST_BUCKET/tampered/" || die "aws s3 cp" || return 1
    scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/tampered/$o"
    expect_action refuse 3 || return 1
    grep -q "tampered or corrupt" <<<"$OUT" || die "reason: $OUT" || return 1
    untouched "$d"
}

s_refuse_truncated() {
    local d=$LOGDIR/trunc
    mkdir -p "$d"
    head -c $(($(stat -c %s "$SNAP") - 4096)) "$SNAP" >"$LOGDIR/trunc.db"
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors "$LOGDIR/trunc.db" \
        "s3://$S3_TEST_BUCKET/manual/trunc.db" || die "aws s3 cp" || return 1
    scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/manual/trunc.db"
    expect_action refuse 3 || return 1
    untouched "$d"
}

s_refuse_unreachable() {
    local d=$LOGDIR/unreach
    mkdir -p "$d"
    AWS_ENDPOINT_URL=http://127.0.0.1:9 scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/backups/"
    expect_action refuse 3 || return 1
    grep -q "cannot reach" <<<"$OUT" || die "reason: $OUT" || return 1
    untouched "$d"
}

s_refuse_wrong_secret() {
    local d=$LOGDIR/secret
    mkdir -p "$d"
    AWS_SECRET_ACCESS_KEY=wrong-secret scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/backups/"
    expect_action refuse 3 || return 1
    grep -q "SignatureDoesNotMatch" <<<"$OUT" || die "reason: $OUT" || return 1
    ! grep -q "wrong-secret" <<<"$OUT" "$LOGDIR/reset-member.log" || die "secret in the output" || return 1
    untouched "$d"
}

# .zst and .age undone while downloading (common/codec.h): a backup made with the standard tools
# (zstd, then age -r to an age-keygen key) restores with --restore-identity; another identity
# is refused, nothing touched.
s_zstd_age() {
    local d=$LOGDIR/zstage o=00000000000000dd/20261205T000000Z-rev50.db.zst.age other=$LOGDIR/zstage-other
    mkdir -p "$d" "$other" "$LOGDIR/zlayout/00000000000000dd"
    age-keygen -o "$LOGDIR/key.txt" 2>/dev/null || die "age-keygen" || return 1
    age-keygen -o "$LOGDIR/other.txt" 2>/dev/null || die "age-keygen" || return 1
    zstd -q -c "$SNAP" | age -r "$(age-keygen -y "$LOGDIR/key.txt")" >"$LOGDIR/zlayout/$o" ||
        die "zstd | age" || return 1
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors "$LOGDIR/zlayout/$o" \
        "s3://$S3_TEST_BUCKET/enc/$o" || die "aws s3 cp" || return 1
    scratch_rm "$other" --restore-from "s3://$S3_TEST_BUCKET/enc/$o" --restore-identity "$LOGDIR/other.txt"
    expect_action refuse 3 || return 1
    untouched "$other" || return 1
    ETCD_RESTORE_IDENTITY_FILE=$LOGDIR/key.txt scratch_rm "$d" --restore-from "s3://$S3_TEST_BUCKET/enc/$o"
    expect_action restore 0 || return 1
    grep -qx "object=${o#*/}" "$d/data.restore-marker" || die "marker object" || return 1
    grep -qx "object_sha256=$(sha "$LOGDIR/zlayout/$o")" "$d/data.restore-marker" || die "marker object_sha256" || return 1
    grep -qx "sha256=$(trailer "$SNAP")" "$d/data.restore-marker" || die "marker sha256" || return 1
    [ -s "$d/data/member/snap/db" ] || die "no db restored"
}

ALL="s3_newest s3_object_without_manifest file_newest refuse_tampered refuse_truncated
refuse_unreachable refuse_wrong_secret zstd_age"

run_scenario() {
    local name=$1 start=$SECONDS
    WHY=""
    if "s_$name"; then
        echo "ok $name ($((SECONDS - start))s)"
        passed=$((passed + 1))
    else
        echo "FAIL $name: ${WHY:-failed} ($((SECONDS - start))s)"
        failed=$((failed + 1))
    fi
}

[ -x "$RM" ] || { echo "FAIL setup: $RM not built"; echo "0 passed, 1 failed"; exit 1; }
if ! cluster_up 1 >"$LOGDIR/up.log" 2>&1; then
    echo "FAIL setup: cluster up: $(tail -3 "$LOGDIR/up.log")"
    echo "0 passed, 1 failed"
    exit 1
fi
for i in $(seq 1 50); do cluster_etcdctl 0 put "k/$i" "v$i" >/dev/null; done
cluster_etcdctl 0 snapshot save "$SNAP" >/dev/null 2>&1 || { echo "FAIL setup: snapshot"; echo "0 passed, 1 failed"; exit 1; }
read -r SCRATCH_PEER SCRATCH_CLIENT <<<"$(_cluster_free_ports 2)"
make_layout "$LOGDIR/layout"
if ! eval "$(tests/s3/server.sh start)"; then
    echo "FAIL setup: tests/s3/server.sh start"
    echo "0 passed, 1 failed"
    exit 1
fi
"$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --only-show-errors --recursive "$LOGDIR/layout/" \
    "s3://$S3_TEST_BUCKET/backups/" || { echo "FAIL setup: upload"; echo "0 passed, 1 failed"; exit 1; }
echo "setup: snapshot of $(stat -c %s "$SNAP") bytes, layout uploaded"

for s in ${*:-$ALL}; do
    run_scenario "$s"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
