#!/usr/bin/env bash
# run.sh - runs every libFuzzer target in build/fuzz for a fixed time each, with ASan+UBSan.
# Corpus: tests/fuzz/corpus/<target>/ (not committed; grows across runs), seeded from
# tests/fuzz/seeds/<target>/ (small, committed). Fails on any crash, leak or timeout, and
# prints the executions per target. usage: tests/fuzz/run.sh [--seconds N]
set -u
cd "$(dirname "$0")/../.."
seconds=60
[ "${1:-}" = --seconds ] && seconds=$2
passed=0 failed=0
for bin in build/fuzz/tests/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus=tests/fuzz/corpus/$name
    mkdir -p "$corpus"
    seeds=()
    [ -d "tests/fuzz/seeds/$name" ] && seeds=("tests/fuzz/seeds/$name")
    log=$(mktemp)
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="tests/fuzz/crash-$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
        execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}')
        printf 'ok   %-24s %10s execs in %ss\n' "$name" "${execs:-?}" "$seconds"
        passed=$((passed + 1))
    else
        printf 'FAIL %-24s\n' "$name"
        grep -aE 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
    rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
