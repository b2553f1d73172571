#!/usr/bin/env bash
# run.sh - runs every test suite and prints one closing line "N passed, N failed, N skipped".
#
# Suites: unit (cmocka binaries), integration (cmocka binaries, each against a fresh 3-member
# TLS cluster from tests/cluster.sh), e2e (tests/e2e/*.sh, each brings its own cluster), and,
# with --asan-build, unit+integration again under ASan+UBSan; valgrind runs the unit binaries
# under memcheck (tests/faults/*.sh run with e2e); fuzz runs a short libFuzzer pass (tests/fuzz/run.sh) when present.
# Counts are test cases: cmocka's PASSED/FAILED/SKIPPED lines, and each script's own closing line
# (tests/lib/lib.bash's "N passed, N failed, N skipped"; exit 77: all skipped). See tally().
#
# The integration, e2e and fault suites run once per etcd build in --etcd (a list of directories
# holding etcd and etcdctl; the word PATH is PATH's etcd; default: $ETCD_BIN_DIR, else PATH), each
# job labelled with that build's version; unit, ASan, valgrind, static and fuzz run once.
#
# usage: tests/run.sh --build DIR [--asan-build DIR] [--etcd "PATH DIR..."]
#                     [--only unit|integration|e2e|valgrind|static|fuzz] [--record FILE]
set -u
cd "$(dirname "$0")/.."

build=build asan_build="" only="" record="" etcd_dirs=${ETCD_BIN_DIR:-PATH}
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --asan-build) asan_build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --etcd) etcd_dirs=$2; shift 2 ;;
    --record) record=$2; shift 2 ;;
    *) echo "usage: $0 --build DIR [--asan-build DIR] [--etcd \"PATH DIR...\"] [--only SUITE]" >&2; exit 2 ;;
    esac
done

logdir=$(mktemp -d "${TMPDIR:-/tmp}/etcd-recovery-tests.XXXXXX")
passed=0 failed=0 skipped=0 failed_names=() skipped_names=()

# Record one program's result: parse cmocka's or a script's closing counts from its log.
# A skip is counted as a skip, never a pass: a script's "N skipped", cmocka's SKIPPED lines, or a
# program that exits 77 (liburing's convention) without counts. With CI=true (CI has root,
# chroot, FUSE and io_uring) every skip is a failure. A program that exits 0 without reporting a
# test is a failure ("ran no test"), one that fails without a failed case counts one failure.
tally() {
    local name=$1 rc=$2 log=$3 p f s line why=""
    p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
    f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
    s=$(grep -aE '^\[  SKIPPED \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
    line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -n "$line" ]; then
        p=$((p + $(echo "$line" | awk '{print $1}')))
        f=$((f + $(echo "$line" | awk '{print $3}')))
        s=$((s + $(echo "$line" | awk '$6 == "skipped" {print $5; exit} {print 0}')))
    fi
    if [ "$rc" = 77 ] && [ "$f" = 0 ]; then
        [ "$s" = 0 ] && s=1
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1
    elif [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$f" = 0 ]; then
        f=1 why="ran no test"
    fi
    if [ "${CI:-}" = true ] && [ "$s" != 0 ]; then
        f=$((f + s)) why="${why:+$why; }$s skipped, and with CI=true a skip is a failure" s=0
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    if [ "$f" != 0 ]; then
        failed_names+=("$name")
        printf 'FAIL %-40s (%d passed, %d failed, %d skipped; rc %s%s) log: %s\n' "$name" "$p" "$f" \
            "$s" "$rc" "${why:+; $why}" "$log"
        tail -n 30 "$log" | sed 's/^/    | /'
    elif [ "$s" != 0 ]; then
        skipped_names+=("$name")
        printf 'SKIP %-40s (%d passed, %d skipped) log: %s\n' "$name" "$p" "$s" "$log"
        grep -aE '^SKIP |^\[  SKIPPED \] [a-z]' "$log" | sed 's/^/    | /'
    else
        printf 'ok   %-40s (%d passed)\n' "$name" "$p"
    fi
}

# one_check CMD...: a tool that reports no counts (lint, analyze) is one check.
one_check() {
    if "$@"; then echo "1 passed, 0 failed, 0 skipped"; else echo "0 passed, 1 failed, 0 skipped"; fi
}

# Jobs run in a pool of $TEST_JOBS (default 3): most suites wait on etcd (elections, timeouts),
# not on the CPU, and each brings its own cluster on its own ports. Results are tallied in
# the order they finish.
# The suites queue their jobs (queue_job); start_queued starts them longest first, by the
# seconds tests/job_seconds.txt gives each job name ("SECONDS NAME" lines, from a past run:
# refresh it with --record FILE, which writes this run's times), so the pool ends without a long
# tail. A job missing from the table counts DEFAULT_JOB_SECONDS.
TEST_JOBS=${TEST_JOBS:-3}
DEFAULT_JOB_SECONDS=60
job_names=() job_logs=() job_done=()
declare -A job_seconds=()
if [ -f tests/job_seconds.txt ]; then
    while read -r secs name; do
        [[ $secs =~ ^[0-9]+$ ]] && job_seconds[$name]=$secs
    done <tests/job_seconds.txt
fi
queued=() # "SECONDS<TAB>NAME<TAB>CMD (printf %q words)"
queue_job() { # name cmd...
    local name=$1 secs
    shift
    secs=${job_seconds[$name]:-$DEFAULT_JOB_SECONDS}
    queued+=("$secs"$'\t'"$name"$'\t'"$(printf '%q ' "$@")")
}
start_queued() {
    local line secs name cmd
    while IFS=$'\t' read -r secs name cmd; do
        eval "run_logged \"\$name\" $cmd"
    done < <(printf '%s\n' "${queued[@]}" | sort -t $'\t' -k1,1nr -s)
    queued=()
}
run_logged() { # name cmd...
    local name=$1 log
    shift
    log="$logdir/$(echo "$name" | tr '/ ' '__').log"
    while [ -e "$log" ]; do log="${log%.log}+.log"; done # never share a log between jobs
    : >"$log"
    (
        start=$SECONDS
        "$@" >"$log" 2>&1 </dev/null
        echo "$? $((SECONDS - start))" >"$log.rc"
    ) &
    job_names+=("$name")
    job_logs+=("$log")
    job_done+=(0)
    while [ "$(jobs -rp | wc -l)" -ge "$TEST_JOBS" ]; do
        wait -n
        reap_jobs
    done
}

# Tally every finished job not tallied yet, as it finishes.
reap_jobs() {
    local i rc secs
    for i in "${!job_names[@]}"; do
        [ "${job_done[$i]}" = 0 ] && [ -f "${job_logs[$i]}.rc" ] || continue
        read -r rc secs <"${job_logs[$i]}.rc" || { rc=1 secs=?; }
        tally "${job_names[$i]} [${secs}s]" "$rc" "${job_logs[$i]}"
        job_done[$i]=1
    done
}

finish_jobs() {
    local i
    wait
    reap_jobs
    for i in "${!job_names[@]}"; do # a job that died without writing its result
        [ "${job_done[$i]}" = 1 ] && continue
        tally "${job_names[$i]} [?s]" 1 "${job_logs[$i]}"
        job_done[$i]=1
    done
}

# The etcd builds: "VERSION DIR" lines (DIR PATH = as found in PATH); a build whose etcd or
# etcdctl is missing, or whose version cannot be read, is an error, never silently left out.
etcd_builds=()
for d in $etcd_dirs; do
    if [ "$d" = PATH ]; then e=$(command -v etcd) || { echo "run.sh: no etcd in PATH" >&2; exit 2; }
    else
        case $d in /*) ;; *) d=$PWD/$d ;; esac
        e=$d/etcd
        [ -x "$d/etcdctl" ] || { echo "run.sh: no etcdctl in $d" >&2; exit 2; }
    fi
    v=$("$e" --version 2>/dev/null | sed -n 's/^etcd Version: //p')
    [ -n "$v" ] || { echo "run.sh: $e --version says no version" >&2; exit 2; }
    etcd_builds+=("$v $d")
done
# with_etcd DIR CMD...: CMD with DIR's etcd first in PATH (cluster.sh reads ETCD_BIN_DIR).
with_etcd() {
    local d=$1
    shift
    if [ "$d" = PATH ]; then unset ETCD_BIN_DIR; else export ETCD_BIN_DIR=$d PATH=$d:$PATH; fi
    "$@"
}
# for_each_etcd SUITE: SUITE once per etcd build; job names start with "etcd VERSION/".
for_each_etcd() {
    local suite=$1 b
    for b in "${etcd_builds[@]}"; do
        etcd_label="etcd ${b%% *}/" etcd_dir=${b#* } "$suite" "${@:2}"
    done
}
etcd_label="" etcd_dir=${etcd_builds[0]#* } # the suites that run once: the first build

suite_unit() { # build-dir label (distinct per suite: it names the job's log file)
    local b=$1 label=$2 t scale=1
    case $label in asan/*) scale=3 ;; esac
    for t in "$b"/tests/unit/test_*; do
        [ -x "$t" ] || continue
        queue_job "$label$(basename "$t")" env TEST_TIME_SCALE="$scale" "$t"
    done
}

# Each integration binary gets its own fresh cluster so one test's damage cannot leak.
integ_one() {
    local t=$1 rc
    eval "$(tests/cluster.sh up 3)" || { echo "cluster did not come up"; return 1; }
    "$t"
    rc=$?
    tests/cluster.sh down
    return $rc
}

suite_integration() {
    local b=$1 label=$2 t
    for t in "$b"/tests/integration/test_*; do
        [ -x "$t" ] || continue
        queue_job "$etcd_label$label$(basename "$t")" with_etcd "$etcd_dir" integ_one "$t"
    done
}

# A script may split itself into shards, lines "# shard: ARGS...": one job per shard.
suite_e2e() {
    local s shard
    for s in tests/e2e/*.sh tests/faults/*.sh; do
        [ -f "$s" ] || continue
        if grep -q '^# shard: ' "$s"; then
            while read -r shard; do
                # shellcheck disable=SC2086
                queue_job "$etcd_label${s#tests/} ${shard%% *}..." with_etcd "$etcd_dir" \
                    env BUILD="$build" bash "$s" $shard
            done < <(sed -n 's/^# shard: //p' "$s")
        else
            queue_job "$etcd_label${s#tests/}" with_etcd "$etcd_dir" env BUILD="$build" bash "$s"
        fi
    done
}

suite_valgrind() {
    local t
    command -v valgrind >/dev/null || { echo "valgrind missing"; return; }
    for t in "$build"/tests/unit/test_*; do
        [ -x "$t" ] || continue
        queue_job "valgrind/unit/$(basename "$t")" env TEST_TIME_SCALE=10 valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --track-fds=no "$t"
    done
}

# The CPU-bound jobs that no deadline depends on (analyze; fuzz's targets each run a fixed time)
# run niced: the pool's jobs that wait on etcd (elections, probe deadlines) keep the CPU first,
# these take what is left.
CPU_NICE=10
suite_static() { # banned functions, clang-format, clang-tidy and cppcheck must be clean
    queue_job "lint (banned functions, clang-format)" one_check make --no-print-directory lint
    queue_job "analyze (clang-tidy, cppcheck)" one_check nice -n "$CPU_NICE" make --no-print-directory BUILD="$build" analyze
}

# One job of the pool, niced (CPU_NICE): its targets (FUZZ_JOBS at a time, default one per core)
# each run a fixed time (libFuzzer's max_total_time) on the CPU the other jobs leave.
suite_fuzz() {
    [ -x tests/fuzz/run.sh ] || return 0
    queue_job "fuzz (short pass)" nice -n "$CPU_NICE" tests/fuzz/run.sh --seconds "${FUZZ_SECONDS:-10}"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

t0=$SECONDS
for b in "${etcd_builds[@]}"; do echo "etcd ${b%% *}: ${b#* }"; done
case $only in
unit) suite_unit "$build" "unit/" ;;
integration) for_each_etcd suite_integration "$build" "integration/" ;;
e2e) for_each_etcd suite_e2e ;;
valgrind) suite_valgrind ;;
static) suite_static ;;
fuzz) suite_fuzz ;;
"")
    for_each_etcd suite_e2e
    suite_unit "$build" "unit/"
    for_each_etcd suite_integration "$build" "integration/"
    if [ -n "$asan_build" ]; then
        suite_unit "$asan_build" "asan/unit/"
        suite_integration "$asan_build" "asan/integration/"
    fi
    suite_valgrind
    suite_static
    suite_fuzz
    ;;
*) echo "unknown suite $only" >&2; exit 2 ;;
esac
start_queued
finish_jobs
if [ -n "$record" ]; then # this run's job times, longest first (for tests/job_seconds.txt)
    {
        head -1 tests/job_seconds.txt 2>/dev/null | grep '^#'
        for i in "${!job_names[@]}"; do
            read -r _ secs <"${job_logs[$i]}.rc" 2>/dev/null && echo "$secs ${job_names[$i]}"
        done | sort -k1,1nr
    } >"$logdir/job_seconds" && mv "$logdir/job_seconds" "$record" # (the record may be the table)
fi

echo
echo "logs: $logdir  ($((SECONDS - t0)) s)"
if [ ${#skipped_names[@]} -gt 0 ]; then
    echo "skipped in: ${skipped_names[*]}"
fi
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
