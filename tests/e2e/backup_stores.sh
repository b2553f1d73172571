#!/usr/bin/env bash
# backup_stores.sh - the stores of issue 15 / 11 end to end beside a real one-member TLS cluster:
# AWS credentials from a credentials file (no env keys) re-read when the file is rewritten, a
# session token verified by the SigV4 proxy, an expired one refused before any request; one
# store shared by the schedule and GET /backups threads (s3://BUCKET/, no prefix); a missing
# bucket (agent: one error line, reason "bucket", no crash; reset-member: refused, nothing
# touched); the store over TLS with a private CA (AWS_CA_BUNDLE); tiered retention
# (--backup-keep hourly=2,daily=2) over seeded older backups; reset-member --restore-from
# azure://ACCOUNT/CONTAINER/PREFIX/ (Azurite) with Shared Key and with a SAS token, and the
# shared-store check on azure:// too.
# Real servers: s3rver behind tests/s3/proxy.py (verifies every signature with botocore),
# Azurite (verifies Shared Key and SAS). Prints "ok <name>" / "FAIL <name>: why".
source "$(dirname "$0")/../lib/lib.bash"
need_bins "$AGENT" "$RM_RELEASE"
for t in age age-keygen openssl; do
    command -v $t >/dev/null || skip_all "$t missing (make deps)"
done
[ -x /usr/bin/aws ] || skip_all "awscli missing (make deps)"
AWS=/usr/bin/aws

s3_server_up
cluster_up 1 >/dev/null || { fail setup "cluster did not start"; finish; }
put_keys bs 20 || fail setup "put_keys"
age_identity

# agent TLSPORT PLAINPORT FLAGS...: an agent beside member 0, with the mTLS listener for /backups
agent() {
    local pp=$2
    start_tls_agent PID_A 0 "$@"
    until_true 20 code_is "http://127.0.0.1:$pp/status" 200 || fail "agent on $pp did not answer"
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
post() { tls_curl -o "$WORK/post.json" -w '%{http_code}' -X POST "https://127.0.0.1:$1/backups"; }
pctl() { curl -s ${AWS_CA_BUNDLE:+--cacert "$AWS_CA_BUNDLE"} "$S3_TEST_PROXY/__proxy/$1"; }
pstat() { pctl stats | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
# the AWS CLI with the keys the proxy accepts now (set_keys), not the ones the agent holds
CUR_ACCESS="" CUR_SECRET="" CUR_TOKEN=""
awsc() {
    AWS_ACCESS_KEY_ID=${CUR_ACCESS:-$AWS_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY=${CUR_SECRET:-$AWS_SECRET_ACCESS_KEY} \
        AWS_SESSION_TOKEN=$CUR_TOKEN $AWS --endpoint-url "$AWS_ENDPOINT_URL" "$@"
}
aws_ls() { awsc s3 ls --recursive "s3://$S3_TEST_BUCKET/$1" 2>/dev/null | awk '{print $4}'; }
set_keys() { # ACCESS SECRET [TOKEN]: the only keys the proxy accepts from now on
    CUR_ACCESS=$1 CUR_SECRET=$2 CUR_TOKEN=${3:-}
    pctl "creds?access=$1&secret=$2${3:+&token=$3}" >/dev/null
}
log_of() { echo "$WORK/agent-0-$1.log"; }

untouched() { [ ! -e "$1/data" ] && [ ! -e "$1/data.restore-marker" ] && [ ! -e "$1/data.restore-download" ]; }

# ---- 1. credentials from a file, re-read when rewritten; session token; expiry ----
S3_ACCESS=$AWS_ACCESS_KEY_ID S3_SECRET=$AWS_SECRET_ACCESS_KEY S3_ENDPOINT=$AWS_ENDPOINT_URL
mkdir -p "$WORK/aws"
write_creds() { # ACCESS SECRET [extra lines]: rewritten the way a Secret volume is (new file, rename)
    printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n%s' \
        "$1" "$2" "${3:-}" >"$WORK/aws/credentials.new"
    mv "$WORK/aws/credentials.new" "$WORK/aws/credentials"
}
write_creds "$S3_ACCESS" "$S3_SECRET"
printf '[profile backup]\nregion = us-east-1\nendpoint_url = %s\n' "$S3_ENDPOINT" >"$WORK/aws/config"
read -r TP PP <<<"$(_cluster_free_ports 2)"
(
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL AWS_REGION
    export AWS_SHARED_CREDENTIALS_FILE=$WORK/aws/credentials AWS_CONFIG_FILE=$WORK/aws/config AWS_PROFILE=backup
    agent "$TP" "$PP" --backup-url "s3://$S3_TEST_BUCKET/creds" --backup-compress none
    echo "$PID_A" >"$WORK/creds.pid"
)
AGENT_PIDS+=("$(cat "$WORK/creds.pid")")
LOG=$(log_of "$PP")
code=$(post "$TP")
if [ "$code" = 200 ] && [ "$(aws_ls creds/ | grep -c 'manifest.json$')" = 1 ]; then
    ok "creds file: the agent backs up with keys from AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE, endpoint and region from AWS_CONFIG_FILE (no AWS_* keys in env)"
else
    fail "creds file: first backup" "code $code $(cat "$WORK/post.json")"
fi
NEW_ACCESS=AKIAROTATEDKEY000001 NEW_SECRET=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
set_keys "$NEW_ACCESS" "$NEW_SECRET" # the store now knows the new keys only
code=$(post "$TP")
if [ "$code" = 502 ] && grep -q InvalidAccessKeyId "$WORK/post.json"; then
    ok "creds file: keys rotated in the store, old file: refused (InvalidAccessKeyId)"
else
    fail "creds file: old keys refused" "code $code $(cat "$WORK/post.json")"
fi
write_creds "$NEW_ACCESS" "$NEW_SECRET"
code=$(post "$TP")
if [ "$code" = 200 ] && grep -q 'new AWS credentials from the shared credentials file' "$LOG" &&
    [ "$(aws_ls creds/ | grep -c 'manifest.json$')" = 2 ] && ! grep -q "$NEW_SECRET" "$LOG"; then
    ok "creds file: the file rewritten with the new keys: the next backup uses them (logged, no secret)"
else
    fail "creds file: rewritten file" "code $code $(cat "$WORK/post.json")"
fi
TOKEN="FwoGZXIvYXdzE$(head -c 300 /dev/urandom | base64 -w0 | tr -d '/+=')"
set_keys "$NEW_ACCESS" "$NEW_SECRET" "$TOKEN"
r0=$(pstat refused)
code=$(post "$TP")
if [ "$code" = 502 ] && grep -q 'InvalidToken' "$WORK/post.json"; then
    ok "session token: the proxy refuses requests without the token"
else
    fail "session token: required" "code $code $(cat "$WORK/post.json")"
fi
EXP=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
write_creds "$NEW_ACCESS" "$NEW_SECRET" "aws_session_token = $TOKEN
expiration = $EXP
"
r1=$(pstat refused)
code=$(post "$TP")
if [ "$code" = 200 ] && [ "$(pstat refused)" = "$r1" ] && [ "$(aws_ls creds/ | grep -c 'manifest.json$')" = 3 ] &&
    ! grep -q "$TOKEN" "$LOG" "$WORK/post.json"; then
    ok "session token: aws_session_token from the file sent as x-amz-security-token, signed and verified ($((r1 - r0)) refused before)"
else
    fail "session token: verified" "code $code refused $r1 -> $(pstat refused) $(cat "$WORK/post.json")"
fi
write_creds "$NEW_ACCESS" "$NEW_SECRET" "aws_session_token = $TOKEN
expiration = 2026-01-01T00:00:00Z
"
q0=$(pstat requests)
f0=$(metric "$PP" 'etcd_agent_backup_failures_total{reason="credentials"}')
code=$(post "$TP")
if [ "$code" = 502 ] && grep -q 'expired at 2026-01-01T00:00:00Z' "$WORK/post.json" &&
    [ "$(pstat requests)" = "$q0" ] &&
    [ "$(metric "$PP" 'etcd_agent_backup_failures_total{reason="credentials"}')" = $((f0 + 1)) ]; then
    ok "session token: expired in the file: clear error, reason credentials, no request sent"
else
    fail "session token: expired" "code $code requests $q0 -> $(pstat requests) $(cat "$WORK/post.json")"
fi
stop_agents
set_keys "$S3_ACCESS" "$S3_SECRET"

# shared_store NAME URL: an agent backing up to URL every 2 s while GET /backups is polled for
# 10 s (the schedule, the listing and its manifest reads share one store): every answer 200,
# with every complete backup's manifest, no store error in the log
shared_store() {
    local name=$1 url=$2 bad=0 n=0 end ups code
    read -r TP PP <<<"$(_cluster_free_ports 2)"
    agent "$TP" "$PP" --backup-url "$url" --backup-interval 2s --backup-compress none
    LOG=$(log_of "$PP")
    end=$((SECONDS + 10))
    while [ $SECONDS -lt $end ]; do
        code=$(tls_curl -o "$WORK/list.json" -w '%{http_code}' "https://127.0.0.1:$TP/backups")
        n=$((n + 1))
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["store"] == sys.argv[2]
assert all("manifest" in b for b in d["backups"] if b["complete"])' "$WORK/list.json" "$url" 2>/dev/null &&
            [ "$code" = 200 ] || bad=$((bad + 1))
    done
    ups=$(grep -c '"backup uploaded"' "$LOG")
    if [ "$bad" = 0 ] && [ "$ups" -ge 3 ] && ! grep -q '"level":"warn".*store:\|backup failed' "$LOG"; then
        ok "$name: $n GET /backups during $ups scheduled backups all answered with every manifest"
    else
        fail "$name" "$bad of $n lists bad, $ups uploads; $(grep -h '"level":"warn".*store:\|backup failed' "$LOG" | head -2)"
    fi
    stop_agents
}

# ---- 2. s3://BUCKET/ (no prefix), one store shared by the schedule and GET /backups ----
shared_store "s3://BUCKET/ shared by threads" "s3://$S3_TEST_BUCKET/"

# ---- 3. a missing bucket ----
read -r TP PP <<<"$(_cluster_free_ports 2)"
agent "$TP" "$PP" --backup-url "s3://no-such-bucket/etcd" --backup-interval 1s
LOG=$(log_of "$PP")
# the schedule retries after its grace (BACKUP_GRACE_MIN_MS, 5 s): wait for three attempts
bucket_fails_ge() { [ "$(metric "$PP" 'etcd_agent_backup_failures_total{reason="bucket"}')" -ge "$1" ] 2>/dev/null; }
until_true 30 bucket_fails_ge 3
m=$(metric "$PP" 'etcd_agent_backup_failures_total{reason="bucket"}')
lines=$(grep -c '"backup failed"' "$LOG")
if [ "${m:-0}" -ge 3 ] && [ "$lines" = 1 ] && grep '"backup failed"' "$LOG" | grep -q '"reason":"bucket".*no-such-bucket does not exist (NoSuchBucket)' &&
    kill -0 "$PID_A"; then
    ok "missing bucket: the agent logs one clear line (reason bucket), counts $m failures, keeps running"
else
    fail "missing bucket: agent" "metric '$m' lines $lines"
fi
code=$(post "$TP")
if [ "$code" = 502 ] && grep -q 'does not exist (NoSuchBucket)' "$WORK/post.json"; then
    ok "missing bucket: POST /backups answers 502 with the reason"
else
    fail "missing bucket: POST" "code $code $(cat "$WORK/post.json")"
fi
stop_agents
rm_restore "$WORK/rm-nobucket" "s3://no-such-bucket/etcd/"
if [ "$RC" = 3 ] && [ "$(jget action <<<"$OUT")" = refuse ] && grep -q 'NoSuchBucket' <<<"$OUT" &&
    untouched "$WORK/rm-nobucket"; then
    ok "missing bucket: reset-member --restore-from refuses clearly, nothing touched"
else
    fail "missing bucket: reset-member" "rc $RC $OUT"
fi

# ---- 4. tiered retention over seeded older backups ----
read -r TP PP <<<"$(_cluster_free_ports 2)"
agent "$TP" "$PP" --backup-url "s3://$S3_TEST_BUCKET/tier" --backup-compress none
code=$(post "$TP")
SEED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/post.json" 2>/dev/null)
stop_agents
CID=${SEED%%/*}
mkdir -p "$WORK/seed"
awsc s3 mv --only-show-errors --recursive "s3://$S3_TEST_BUCKET/tier/$CID/" "$WORK/seed/" || fail "retention: seed download"
D1=$(date -u -d yesterday +%Y%m%d) D2=$(date -u -d '2 days ago' +%Y%m%d) D3=$(date -u -d '3 days ago' +%Y%m%d)
# name manifest?: yesterday 10:00 and 11:00, two and three days ago, an unverified one (no manifest)
SEEDS="${D1}T100000Z-rev5.db:y ${D1}T110000Z-rev6.db:y ${D2}T090000Z-rev4.db:y ${D3}T090000Z-rev3.db:y ${D1}T120000Z-rev7.db:n"
mkdir -p "$WORK/layout/$CID"
for s in $SEEDS; do # copies of the agent's object and manifest under older names
    name=${s%%:*}
    cp "$WORK/seed/${SEED#*/}" "$WORK/layout/$CID/$name"
    [ "${s##*:}" = y ] &&
        python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["name"]=sys.argv[2]; print(json.dumps(m))' \
            "$WORK/seed/${SEED#*/}.manifest.json" "$CID/$name" >"$WORK/layout/$CID/$name.manifest.json"
done
awsc s3 cp --only-show-errors --recursive "$WORK/layout/" "s3://$S3_TEST_BUCKET/tier/" || fail "retention: seed upload"
aws_ls tier/ | sort >"$WORK/tier0.txt"
read -r TP PP <<<"$(_cluster_free_ports 2)"
agent "$TP" "$PP" --backup-url "s3://$S3_TEST_BUCKET/tier" --backup-compress none --backup-keep hourly=2,daily=2
LOG=$(log_of "$PP")
set_keys AKIAREFUSEDFORNOW000 refused # a backup that fails prunes nothing
code1=$(post "$TP")
set_keys "$S3_ACCESS" "$S3_SECRET"
aws_ls tier/ | sort >"$WORK/tier1.txt"
code=$(post "$TP")
NEW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/post.json" 2>/dev/null)
aws_ls tier/ | sort >"$WORK/tier2.txt"
want_kept=$(printf '%s\n' "tier/$NEW" "tier/$NEW.manifest.json" "tier/$CID/${D1}T110000Z-rev6.db" \
    "tier/$CID/${D1}T110000Z-rev6.db.manifest.json" | sort)
if [ "$code1" = 502 ] && cmp -s "$WORK/tier0.txt" "$WORK/tier1.txt"; then
    ok "retention: a failed backup prunes nothing ($(wc -l <"$WORK/tier0.txt") objects stay)"
else
    fail "retention: failed backup" "code $code1; $(diff "$WORK/tier0.txt" "$WORK/tier1.txt" | head -3)"
fi
line=$(grep '"backup retention' "$LOG")
if [ "$code" = 200 ] && [ "$(cat "$WORK/tier2.txt")" = "$want_kept" ] && [ "$(grep -c '"backup retention' "$LOG")" = 1 ] &&
    python3 - "$line" "$CID" "$D1" "$D2" "$D3" <<'PY'; then
import json, re, sys
line, cid, d1, d2, d3 = sys.argv[1:]
msg = json.loads(line)["msg"]
assert msg.startswith("backup retention (hourly=2,daily=2): pruned 4 of 6: "), msg
got = dict(re.findall(r"(\S+) \(([^)]*\)?)\)(?:, |$)", msg.split(": ", 1)[1]))
want = {cid + "/" + d1 + "T120000Z-rev7.db": "unverified, superseded",
        cid + "/" + d1 + "T100000Z-rev5.db": "not the newest of its period",
        cid + "/" + d2 + "T090000Z-rev4.db": "expired",
        cid + "/" + d3 + "T090000Z-rev3.db": "expired"}
assert got == want, (got, want)
PY
    ok "retention: hourly=2,daily=2 kept the new backup and yesterday's newest, pruned 4 objects (and their manifests), one log line with the reasons"
else
    fail "retention: pruned set" "code $code; kept: $(tr '\n' ' ' <"$WORK/tier2.txt"); line: $line"
fi
stop_agents

# ---- 5. the store over TLS, trusting a private CA with AWS_CA_BUNDLE ----
TLSENV=$(S3_TEST_TLS=1 tests/s3/server.sh start) || fail "tls: server"
eval "$TLSENV"
CUR_ACCESS="" CUR_SECRET="" CUR_TOKEN=""
TLSDIR=$S3_TEST_DIR
at_exit 'tests/s3/server.sh stop "$TLSDIR"'
read -r TP PP <<<"$(_cluster_free_ports 2)"
agent "$TP" "$PP" --backup-url "s3://$S3_TEST_BUCKET/tls" --backup-recipient "$RCPT"
code=$(post "$TP")
TLSOBJ=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/post.json" 2>/dev/null)
if [ "$code" = 200 ] && [[ $AWS_ENDPOINT_URL == https://* ]] && aws_ls tls/ | grep -q "$TLSOBJ.manifest.json"; then
    ok "tls: the agent backs up to an https store whose CA is in AWS_CA_BUNDLE"
else
    fail "tls: backup" "code $code $(cat "$WORK/post.json")"
fi
stop_agents
read -r TP PP <<<"$(_cluster_free_ports 2)"
(
    unset AWS_CA_BUNDLE
    agent "$TP" "$PP" --backup-url "s3://$S3_TEST_BUCKET/tls"
    echo "$PID_A" >"$WORK/tls.pid"
)
AGENT_PIDS+=("$(cat "$WORK/tls.pid")")
code=$(post "$TP")
if [ "$code" = 502 ] && grep -q "certificate is not trusted (a private CA goes in AWS_CA_BUNDLE)" "$WORK/post.json" &&
    [ "$(grep -c 'retry' "$(log_of "$PP")")" = 0 ]; then
    ok "tls: without AWS_CA_BUNDLE the private CA is not trusted: clear error, no retries"
else
    fail "tls: untrusted" "code $code $(cat "$WORK/post.json")"
fi
stop_agents
rm_restore "$WORK/rm-tls" "s3://$S3_TEST_BUCKET/tls/" --restore-identity "$WORK/id.txt"
if [ "$RC" = 0 ] && [ "$(jget action <<<"$OUT")" = restore ] && grep -q "^object=$TLSOBJ$" "$WORK/rm-tls/data.restore-marker"; then
    ok "tls: reset-member restores from the https store (.zst.age)"
else
    fail "tls: reset-member" "rc $RC $OUT"
fi
tests/s3/server.sh stop "$TLSDIR"
unset AWS_CA_BUNDLE
eval "$S3ENV"

# ---- 6. restore from azure://ACCOUNT/CONTAINER/PREFIX/ with Shared Key and with SAS ----
if AZENV=$(tests/azure/server.sh start); then
    eval "$AZENV"
    AZDIR=$AZURE_TEST_DIR
    at_exit 'tests/azure/server.sh stop "$AZDIR"'
    AZURL="azure://$AZURE_STORAGE_ACCOUNT/$AZURE_TEST_CONTAINER/etcd"
    read -r TP PP <<<"$(_cluster_free_ports 2)"
    agent "$TP" "$PP" --backup-url "$AZURL" --backup-recipient "$RCPT"
    code=$(post "$TP")
    AZOBJ=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/post.json" 2>/dev/null)
    [ "$code" = 200 ] && [ -n "$AZOBJ" ] && ok "azure: the agent backs up to Azurite ($AZOBJ)" ||
        fail "azure: backup" "code $code $(cat "$WORK/post.json")"
    stop_agents
    rm_restore "$WORK/rm-az-key" "$AZURL/" --restore-identity "$WORK/id.txt"
    if [ "$RC" = 0 ] && [ "$(jget action <<<"$OUT")" = restore ] && [ -s "$WORK/rm-az-key/data/member/snap/db" ] &&
        grep -q "^object=$AZOBJ$" "$WORK/rm-az-key/data.restore-marker"; then
        ok "azure: reset-member --restore-from azure://.../ restores the newest backup (Shared Key)"
    else
        fail "azure: restore with Shared Key" "rc $RC $OUT"
    fi
    SAVED_KEY=$AZURE_STORAGE_KEY
    unset AZURE_STORAGE_KEY
    AZURE_STORAGE_SAS_TOKEN=$AZURE_TEST_SAS rm_restore "$WORK/rm-az-sas" "$AZURL/" --restore-identity "$WORK/id.txt"
    if [ "$RC" = 0 ] && [ "$(jget action <<<"$OUT")" = restore ] && [ -s "$WORK/rm-az-sas/data/member/snap/db" ] &&
        grep -q "^object=$AZOBJ$" "$WORK/rm-az-sas/data.restore-marker" &&
        ! grep -q 'sig=' "$WORK/rm-az-sas.log" <<<"$OUT"; then
        ok "azure: the same restore with a SAS token only (no key; the token never logged)"
    else
        fail "azure: restore with SAS" "rc $RC $OUT"
    fi
    AZURE_STORAGE_KEY=$(head -c 64 /dev/urandom | base64 -w0) rm_restore "$WORK/rm-az-bad" "$AZURL/"
    if [ "$RC" = 3 ] && [ "$(jget action <<<"$OUT")" = refuse ] && untouched "$WORK/rm-az-bad"; then
        ok "azure: a wrong key: refused, nothing touched"
    else
        fail "azure: wrong key" "rc $RC $OUT"
    fi
    export AZURE_STORAGE_KEY=$SAVED_KEY
    shared_store "azure: one store shared by threads" "azure://$AZURE_STORAGE_ACCOUNT/$AZURE_TEST_CONTAINER/shared"
else
    skip "azure: restore from azure://" "tests/azure/server.sh did not start"
fi
finish
