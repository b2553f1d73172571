#!/usr/bin/env bash
# run.sh - runs every libFuzzer target in build/fuzz for a fixed time each, with ASan+UBSan.
# Corpus: tests/fuzz/corpus/<target>/ (not committed; grows across runs), seeded from
# tests/fuzz/seeds/<target>/ (small, committed). Fails on any crash, leak or timeout, and
# prints the executions per target. Targets run FUZZ_JOBS at a time (default: the number of
# cores; each takes one whole core).
# usage: tests/fuzz/run.sh [--seconds N]
set -u
cd "$(dirname "$0")/../.."
seconds=60
[ "${1:-}" = --seconds ] && seconds=$2
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fuzz_one() { # bin: writes $out/<name>.res (the line to print) and returns the verdict
    local bin=$1 name corpus log execs
    name=$(basename "$bin")
    corpus=tests/fuzz/corpus/$name
    mkdir -p "$corpus"
    local seeds=()
    [ -d "tests/fuzz/seeds/$name" ] && seeds=("tests/fuzz/seeds/$name")
    log=$out/$name.log
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="tests/fuzz/crash-$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
        execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
        printf 'ok   %-24s %10s execs in %ss\n' "$name" "${execs:-?}" "$seconds" >"$out/$name.res"
    else
        {
            printf 'FAIL %-24s\n' "$name"
            grep -aE 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    | /'
        } >"$out/$name.res"
    fi
}

bins=()
for bin in build/fuzz/tests/fuzz/fuzz_*; do
    [ -x "$bin" ] && bins+=("$bin")
done
running=0
for bin in "${bins[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    fuzz_one "$bin" &
    running=$((running + 1))
done
wait

passed=0 failed=0
for bin in "${bins[@]}"; do
    res=$out/$(basename "$bin").res
    if [ -f "$res" ] && head -1 "$res" | grep -q '^ok'; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        [ -f "$res" ] || printf 'FAIL %-24s (no result)\n' "$(basename "$bin")" >"$res"
    fi
    cat "$res"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
