#!/usr/bin/env bash
# packaging.sh - proves that `make static`'s bundle runs in an image without libc or shell: it
# builds the bundle, copies it into an EMPTY chroot (plus the test certificates and the /etc/hosts
# every pod has, nothing else),
# runs both programs' --version there (as uid 65532, like the image), a reset-member --dry-run (a
# MemberList), a --restore-from URL (libcurl, dlopened from the bundle) and an etcd-agent
# (probed from outside over HTTP and HTTPS) against a real 3-member cluster on 127.0.0.1, and
# the etcd container's start command `reset-member exec` starting a real etcd there (no shell)
# with the state from an env file. Then it
# runs tests/packaging/containerfile-check.sh (Containerfile vs Makefile drift) and adds its counts.
#
# usage: BUILD=build tests/e2e/packaging.sh    (root; chroot(2) must be allowed)
# Prints "ok <name>" / "FAIL <name>: why" and ends with "N passed, N failed, N skipped". Without
# root or chroot it skips: "SKIP ...", "0 passed, 0 failed, 1 skipped", exit 77 (CI=true: a failure).
# Also: the bundle's reset-member ignores RESET_MEMBER_CRASH_AT (only `make tests` builds the hook).
source "$(dirname "$0")/../lib/lib.bash"
BUNDLE_DIR=/usr/lib/etcd-recovery
TIMEOUT=${E2E_WAIT_SECONDS:-90}
JAIL="" AGENT_PID="" ETCD_PID=""
LOG=$WORK/packaging.out
at_exit '[ -n "$ETCD_PID" ] && kill "$ETCD_PID" && wait "$ETCD_PID"'
at_exit '[ -n "$AGENT_PID" ] && kill "$AGENT_PID" && wait "$AGENT_PID"'
at_exit '[ -n "$JAIL" ] && rm -rf "$JAIL"'

# ---- can we chroot at all? ------------------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v chroot >/dev/null || ! chroot / true 2>/dev/null; then
    skip_all "chroot(2) is not possible here (need root and CAP_SYS_CHROOT)"
fi

# ---- build ----------------------------------------------------------------------------------
BUILD_REL=${BUILD#"$ROOT"/} # as the Makefile and the Containerfile name it
if ! make --no-print-directory -s BUILD="$BUILD_REL" static >"$LOG" 2>&1; then
    fail "make static" "$(tail -n 5 "$LOG" | tr '\n' ' ')"
    finish
fi
STATIC_ROOT=$BUILD/static/rootfs
ok "make static ($(du -sk "$STATIC_ROOT" | cut -f1) KiB bundle)"

# ---- the empty chroot: the bundle and the certificates, nothing else -------------------------
if ! cluster_up 3 >/dev/null; then
    fail "cluster" "tests/cluster.sh up 3 failed"
    finish
fi
JAIL=$(mktemp -d "${TMPDIR:-/tmp}/packaging-chroot.XXXXXX")
cp -a "$STATIC_ROOT/." "$JAIL/"
chmod 0755 "$JAIL" # mktemp made it 0700: the image's / is world-readable
mkdir -p "$JAIL/certs" "$JAIL/data" "$JAIL/state"
cp "$CLUSTER_DIR"/{ca.crt,client.crt,client.key,node.crt,node.key} "$JAIL/certs/"
# The one file the kubelet puts in every container that name lookups need (the agent's manifest
# endpoint is https://localhost:2379): glibc's built-in files lookup must find it.
mkdir -p "$JAIL/etc"
printf '127.0.0.1\tlocalhost\n' >"$JAIL/etc/hosts"
# The image runs as 65532 (USER in the Containerfile, runAsUser in the manifests): so do we.
chown -R 65532:65532 "$JAIL/certs" "$JAIL/data" "$JAIL/state"
USERSPEC=--userspec=65532:65532

extra=$(cd "$JAIL" && find . -type f ! -path './certs/*' ! -path "./usr/bin/*" \
    ! -path ".$BUNDLE_DIR/*" ! -path ./etc/hosts | head -5)
if [ -z "$extra" ] && [ ! -e "$JAIL/bin/sh" ] && [ ! -e "$JAIL/lib" ] && [ ! -e "$JAIL/lib64" ]; then
    ok "chroot holds only the bundle, the certificates and /etc/hosts"
else
    fail "chroot contents" "unexpected files: $extra"
fi
if chroot "$JAIL" /bin/sh -c true 2>/dev/null; then
    fail "no shell" "/bin/sh runs inside the chroot"
else
    ok "no shell inside the chroot"
fi

PROGS=()
for p in reset-member etcd-agent; do
    [ -x "$JAIL/usr/bin/$p" ] && PROGS+=("$p")
done
[ ${#PROGS[@]} = 2 ] || fail "bundle" "programs in the bundle: ${PROGS[*]:-none} (want reset-member etcd-agent)"

loader=$(cd "$JAIL$BUNDLE_DIR" && ls ld-linux-* 2>/dev/null | head -1)
for p in "${PROGS[@]}"; do
    interp=$(readelf -l "$JAIL/usr/bin/$p" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
    if [ "$interp" = "$BUNDLE_DIR/$loader" ]; then
        ok "$p: ELF interpreter is $interp"
    else
        fail "$p interpreter" "'$interp', want $BUNDLE_DIR/$loader"
    fi
    # Every library the loader resolves must come from the bundle.
    libs=$(chroot $USERSPEC "$JAIL" "$BUNDLE_DIR/$loader" --list "/usr/bin/$p" 2>&1)
    outside=$(echo "$libs" | awk '$2 == "=>" && $3 !~ "^'"$BUNDLE_DIR"'/" {print}')
    if [ -z "$outside" ] && ! echo "$libs" | grep -q 'not found'; then
        ok "$p: all $(echo "$libs" | grep -c '=>') libraries resolve inside $BUNDLE_DIR"
    else
        fail "$p libraries" "$outside $(echo "$libs" | grep 'not found')"
    fi
    out=$(chroot $USERSPEC "$JAIL" "/usr/bin/$p" --version 2>&1)
    if [[ $out == "$p "* ]]; then
        ok "$p --version in the chroot: $out"
    else
        fail "$p --version" "rc $?: $out"
    fi
done

# Control: the same chroot without the bundled libc must NOT run the programs (so nothing above
# used the host's libraries by accident).
if [ ${#PROGS[@]} -gt 0 ]; then
    mv "$JAIL$BUNDLE_DIR/libc.so.6" "$JAIL/libc.so.6.aside"
    if chroot $USERSPEC "$JAIL" "/usr/bin/${PROGS[0]}" --version >/dev/null 2>&1; then
        fail "control" "${PROGS[0]} ran without the bundled libc: the chroot is not isolated"
    else
        ok "control: without the bundled libc.so.6 ${PROGS[0]} does not start"
    fi
    mv "$JAIL/libc.so.6.aside" "$JAIL$BUNDLE_DIR/libc.so.6"
fi

# ---- reset-member: a dry run is observe + decide, i.e. a MemberList over mTLS ------------------
if [ -x "$JAIL/usr/bin/reset-member" ]; then
    peer=$(cluster_alloc 3)
    out=$(chroot $USERSPEC "$JAIL" /usr/bin/reset-member --dry-run --name etcd-3 --data-dir /data \
        --peer-url "$peer" --initial-cluster "$(cat "$CLUSTER_DIR/initial_cluster"),etcd-3=$peer" \
        --endpoints "$ETCD_TEST_ENDPOINTS" --cacert /certs/ca.crt --cert /certs/client.crt \
        --key /certs/client.key --state-file /state/state --timeout 10s 2>"$LOG")
    rc=$?
    want=$(cluster_etcdctl 0 member list -w json | python3 -c \
        'import json,sys; print(" ".join(sorted("%x" % m["ID"] for m in json.load(sys.stdin)["members"])))')
    got=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        c = json.loads(line).get("cluster", {})
    except ValueError:
        continue
    if c.get("reachable"):
        print(" ".join(sorted(m["id"] for m in c.get("members", []))))
' "$LOG" | tail -1)
    action=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("action",""))' "$out" 2>/dev/null)
    if [ "$rc" = 0 ] && [ -n "$action" ] && [ -n "$got" ] && [ "$got" = "$want" ]; then
        ok "reset-member --dry-run in the chroot: MemberList saw $(wc -w <<<"$got") members, action $action"
    else
        fail "reset-member --dry-run" "rc $rc, out '$out', members '$got' want '$want'; $(tail -c 300 "$LOG")"
    fi
    if [ -e "$JAIL/state/state" ]; then
        fail "reset-member --dry-run" "wrote the state file"
    else
        ok "reset-member --dry-run wrote nothing"
    fi
fi

# ---- reset-member exec: the etcd container's command, in the chroot without a shell ------------
# etcd 3.4 here is linked against glibc (the official 3.5 image's etcd is static): it runs on the
# bundle's loader and libc, which exec starts like any absolute path. The pod env says
# `existing` and a two-member cluster nobody runs; only the env file's `new` one-member cluster
# can come up, so a healthy etcd proves exec set both variables from the file.
if [ -x "$JAIL/usr/bin/reset-member" ] && command -v etcd >/dev/null; then
    mkdir -p "$JAIL/usr/local/bin"
    cp "$(command -v etcd)" "$JAIL/usr/local/bin/etcd"
    read -r cport pport <<<"$(_cluster_free_ports 2)"
    CHROOT=$(command -v chroot) # env -i: no PATH
    exec_env=(env -i ETCD_NAME=solo ETCD_DATA_DIR=/data/etcd ETCD_INITIAL_CLUSTER_STATE=existing
        "ETCD_INITIAL_CLUSTER=solo=http://127.0.0.1:$pport,gone=http://127.0.0.1:1"
        "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:$cport" "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:$cport"
        "ETCD_LISTEN_PEER_URLS=http://127.0.0.1:$pport" "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:$pport")
    exec_cmd=(/usr/bin/reset-member exec --env-file=/state/env -- "$BUNDLE_DIR/$loader"
        --library-path "$BUNDLE_DIR" /usr/local/bin/etcd)
    bad_names=("missing" "with an ETCD_NAME line" "empty")
    bad_files=("" $'ETCD_INITIAL_CLUSTER_STATE=new\nETCD_NAME=evil\n' "")
    for i in 0 1 2; do
        rm -f "$JAIL/state/env"
        [ "$i" = 0 ] || printf '%s' "${bad_files[$i]}" >"$JAIL/state/env"
        "${exec_env[@]}" "$CHROOT" $USERSPEC "$JAIL" "${exec_cmd[@]}" >"$LOG" 2>&1
        rc=$?
        if [ "$rc" = 1 ] && grep -q 'not starting the program' "$LOG" && [ ! -e "$JAIL/data/etcd" ]; then
            ok "reset-member exec in the chroot, env file ${bad_names[$i]}: exit 1, etcd not started"
        else
            fail "reset-member exec, env file ${bad_names[$i]}" "rc $rc; $(tail -c 300 "$LOG")"
        fi
    done
    printf 'ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=solo=http://127.0.0.1:%s\n' "$pport" \
        >"$JAIL/state/env"
    "${exec_env[@]}" "$CHROOT" $USERSPEC "$JAIL" "${exec_cmd[@]}" >"$LOG" 2>&1 &
    ETCD_PID=$! # chroot execs reset-member, which execs the loader running etcd: one pid
    health="" deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ] && kill -0 "$ETCD_PID" 2>/dev/null; do
        health=$(curl -s --max-time 5 "http://127.0.0.1:$cport/health")
        [[ $health == *'"health":"true"'* ]] && break
        sleep 0.5
    done
    if [[ $health == *'"health":"true"'* ]]; then
        ok "reset-member exec in the chroot (no shell) started etcd with the env file's state: healthy"
    else
        fail "reset-member exec etcd" "health '$health'; $(tail -c 400 "$LOG")"
    fi
    members=$(ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$cport" member list 2>&1)
    cmdline=$(tr '\0' ' ' <"/proc/$ETCD_PID/cmdline" 2>/dev/null)
    if [ "$(wc -l <<<"$members")" = 1 ] && [[ $members == *", solo, http://127.0.0.1:$pport,"* ]] &&
        [[ $cmdline == *" /usr/local/bin/etcd "* ]] && head -1 "$LOG" | grep -q '"msg":"exec".*"state":"new"'; then
        ok "the etcd process is the exec'd one (pid $ETCD_PID) and formed the env file's one-member cluster"
    else
        fail "reset-member exec etcd" "members '$members', cmdline '$cmdline', log $(head -c 300 "$LOG")"
    fi
    kill -TERM "$ETCD_PID" 2>/dev/null
    wait "$ETCD_PID" 2>/dev/null
    ETCD_PID=""
    out=$(printf 'ETCD_INITIAL_CLUSTER_STATE=existing\n' >"$JAIL/state/env" &&
        chroot $USERSPEC "$JAIL" /usr/bin/reset-member exec --env-file=/state/env -- \
            /usr/bin/etcd-agent --version 2>/dev/null)
    if [[ $out == "etcd-agent "* ]]; then ok "reset-member exec runs a bundle program in the chroot: $out"; else
        fail "reset-member exec etcd-agent --version" "'$out'"
    fi
fi

# ---- reset-member dlopens libcurl for a --restore-from URL: the bundle must hold it --------------
# No cluster answers (closed ports), so the restorer fetches: a download error (connection
# refused) proves libcurl and its libraries loaded from the bundle; without libcurl.so.4 the
# error must say so.
if [ -x "$JAIL/usr/bin/reset-member" ]; then
    read -r closed_client closed_http <<<"$(_cluster_free_ports 2)"
    restore_url() {
        chroot $USERSPEC "$JAIL" /usr/bin/reset-member --name etcd-0 --data-dir /state/rdata \
            --peer-url https://127.0.0.1:1 --initial-cluster etcd-0=https://127.0.0.1:1 \
            --endpoints "https://127.0.0.1:$closed_client" --cacert /certs/ca.crt \
            --state-file /state/rstate --timeout 1s \
            --restore-from "http://127.0.0.1:$closed_http/snap.db" 2>/dev/null
    }
    out=$(restore_url)
    rc=$?
    if [ "$rc" = 3 ] && [[ $out == *'download http://'*'onnect'* ]] && [[ $out != *libcurl* ]]; then
        ok "reset-member --restore-from URL in the chroot: libcurl loaded (download refused, exit 3)"
    else
        fail "reset-member --restore-from URL" "rc $rc, out '$out'"
    fi
    mv "$JAIL$BUNDLE_DIR/libcurl.so.4" "$JAIL/libcurl.aside"
    out=$(restore_url)
    rc=$?
    mv "$JAIL/libcurl.aside" "$JAIL$BUNDLE_DIR/libcurl.so.4"
    if [ "$rc" = 3 ] && [[ $out == *'cannot load libcurl.so.4'* ]]; then
        ok "control: without the bundled libcurl.so.4 the URL restore says so"
    else
        fail "control: libcurl missing" "rc $rc, out '$out'"
    fi
    if [ -e "$JAIL/state/rstate" ] || [ -e "$JAIL/state/rdata" ]; then
        fail "reset-member --restore-from URL" "a failed download wrote: $(ls "$JAIL/state")"
    fi
fi

# ---- the bundle has no test hook -------------------------------------------------------------------
# RESET_MEMBER_CRASH_AT makes the test build ($RM, `make tests`) SIGKILL itself right after a
# step; the shipped reset-member must ignore it. A fresh bootstrap (no data, cluster unreachable)
# passes the env and state steps; the test build dies there (the control).
if [ -x "$JAIL/usr/bin/reset-member" ]; then
    read -r closed_client <<<"$(_cluster_free_ports 1)"
    mkdir -p "$JAIL/state/hook" && chown 65532:65532 "$JAIL/state/hook"
    out=$(RESET_MEMBER_CRASH_AT=state chroot $USERSPEC "$JAIL" /usr/bin/reset-member --name etcd-h \
        --data-dir /state/hook/data --peer-url https://127.0.0.1:1 \
        --initial-cluster etcd-h=https://127.0.0.1:1 --endpoints "https://127.0.0.1:$closed_client" \
        --cacert /certs/ca.crt --state-file /state/hook/state --env-file /state/hook/env \
        --timeout 1s 2>>"$LOG")
    rc=$?
    if [ "$rc" = 0 ] && [ "$(cat "$JAIL/state/hook/state" 2>/dev/null)" = new ]; then
        ok "bundle's reset-member ignores RESET_MEMBER_CRASH_AT=state (bootstrap done, rc 0)"
    else
        fail "bundle's reset-member with RESET_MEMBER_CRASH_AT=state" "rc $rc, out '$out'"
    fi
    rm -rf "$JAIL/state/hook"
    mkdir -p "$WORK/hook"
    out=$(RESET_MEMBER_CRASH_AT=state "$RM" --name etcd-h --data-dir "$WORK/hook/data" \
        --peer-url https://127.0.0.1:1 --initial-cluster etcd-h=https://127.0.0.1:1 \
        --endpoints "https://127.0.0.1:$closed_client" --cacert "$CLUSTER_DIR/ca.crt" \
        --state-file "$WORK/hook/state" --env-file "$WORK/hook/env" --timeout 1s 2>>"$LOG")
    rc=$?
    check "control: the test build ($RM) dies there (rc $rc)" [ "$rc" = 137 ]
    help=$(chroot $USERSPEC "$JAIL" /usr/bin/reset-member --help 2>&1)
    check "bundle's reset-member --help does not mention the test hook" \
        eval '[[ $help == *"--restore-from"* ]] && [[ $help != *RESET_MEMBER_CRASH_AT* ]]'
    check "control: the test build's --help does" eval '"$RM" --help 2>&1 | grep -q RESET_MEMBER_CRASH_AT'
fi

# ---- etcd-agent: started in the chroot, asked from outside ------------------------------------
if [ -x "$JAIL/usr/bin/etcd-agent" ]; then
    read -r http_port https_port <<<"$(_cluster_free_ports 2)"
    chroot $USERSPEC "$JAIL" /usr/bin/etcd-agent \
        --endpoints "https://localhost:$(cat "$CLUSTER_DIR/members/0/client_port")" \
        --cacert /certs/ca.crt --cert /certs/client.crt --key /certs/client.key \
        --listen "127.0.0.1:$http_port" --tls-listen "127.0.0.1:$https_port" \
        --tls-cert /certs/node.crt --tls-key /certs/node.key --name etcd-0 >"$LOG" 2>&1 &
    AGENT_PID=$! # chroot execs the agent: this is the agent's pid
    code="" deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ] && kill -0 "$AGENT_PID" 2>/dev/null; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$http_port/readyz")
        [ "$code" = 200 ] && break
        sleep 0.5
    done
    if [ "$code" = 200 ]; then
        ok "etcd-agent in the chroot (etcd as https://localhost): /readyz 200 over HTTP"
    else
        fail "etcd-agent /readyz" "last code '$code'; $(tail -c 400 "$LOG")"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CLUSTER_DIR/ca.crt" \
        "https://127.0.0.1:$https_port/livez")
    if [ "$code" = 200 ]; then ok "etcd-agent /livez 200 over HTTPS (TLS files read in the chroot)"; else
        fail "etcd-agent /livez https" "code '$code'"
    fi
    # /members: the table the agent built from MemberList + per-member probes in the chroot.
    n="" deadline=$((SECONDS + TIMEOUT))
    while [ $SECONDS -lt $deadline ] && [ "$n" != 3 ]; do
        n=$(curl -s --max-time 5 "http://127.0.0.1:$http_port/members" |
            python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))' 2>/dev/null)
        [ "$n" = 3 ] || sleep 0.5
    done
    if [ "$n" = 3 ]; then ok "etcd-agent /members lists 3 members"; else
        fail "etcd-agent /members" "got '$n' members"
    fi
    kill -TERM "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"
    rc=$?
    AGENT_PID=""
    if [ "$rc" = 0 ]; then ok "etcd-agent stops cleanly on SIGTERM"; else
        fail "etcd-agent SIGTERM" "exit code $rc; $(tail -c 300 "$LOG")"
    fi
fi

# ---- Containerfile vs Makefile -----------------------------------------------------------------
sub_result containerfile-check "$(BUILD="$BUILD_REL" bash tests/packaging/containerfile-check.sh 2>&1)"
finish
