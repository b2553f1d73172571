#!/usr/bin/env bash
# age.sh - benchmark (make bench only) of the backup filter chain (common/codec.c: zstd level
# 3 then age to one X25519 recipient) against the standard tools in a pipe, `zstd -3 | age -r`,
# on the same MB (default 200) of Kubernetes-like JSON (bench_age gen: compressible objects,
# not random bytes), cached in memory; then decoding both ways (ours: age -> zstd; tools:
# `age -d | zstd -d`), and each stage alone. Prints wall, CPU (user+sys) and peak RSS of each,
# the ratios ours/tools and the compression ratio. Timings are information, never pass/fail.
# usage: tests/bench/age.sh [--build DIR] [--mb N] [--rounds N]   (env BENCH_AGE_MB, BENCH_AGE_ROUNDS)
set -u
cd "$(dirname "$0")/../.."
BUILD=build MB=${BENCH_AGE_MB:-200} ROUNDS=${BENCH_AGE_ROUNDS:-2}
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--mb N] [--rounds N]" >&2; exit 2 ;;
    esac
done
TOOL=$BUILD/tests/bench/bench_age
for t in age age-keygen zstd /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "skip: $t not installed (make deps)"; exit 0; }
done
[ -x "$TOOL" ] || { echo "$TOOL not built (make tests)" >&2; exit 1; }
# In memory when possible: the figures are the coders', not the disk's.
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
T=$(mktemp -d "$base/bench-age.XXXXXX")
trap 'rm -rf "$T"' EXIT
age-keygen -o "$T/key" 2>/dev/null
R=$(age-keygen -y "$T/key")
"$TOOL" gen "$MB" >"$T/json"
cat "$T/json" >/dev/null
SIZE=$(stat -c %s "$T/json")
echo "input: $((SIZE >> 20)) MiB of Kubernetes-like JSON; $ROUNDS round(s), best of each"

calc() { awk "BEGIN { print ($1) }"; }

# Every command once per round, rounds outermost (the machine's load changes over minutes:
# ours and the tools' runs interleave); the best wall of the rounds counts, with its CPU
# (user+sys) and peak RSS.
declare -A W C M CMD
NAMES=()
add() { NAMES+=("$1"); CMD[$1]=$2; W[$1]=999999; C[$1]=0; M[$1]=0; }
add ours-zstd3+age "$TOOL enc -z 3 -r $R <$T/json >$T/ours.zst.age"
add 'tools-zstd3|age' "zstd -3 -q -c <$T/json | age -r $R >$T/tools.zst.age"
add ours-age-only "$TOOL enc -z 0 -r $R <$T/json >$T/ours.age"
add tools-age-only "age -r $R <$T/json >$T/tools.age"
add ours-zstd3-only "$TOOL enc -z 3 <$T/json >$T/ours.zst"
add tools-zstd3-only "zstd -3 -q -c <$T/json >$T/tools.zst"
add ours-age-d+zstd-d "$TOOL dec -z -i $T/key <$T/ours.zst.age >/dev/null"
add 'tools-age-d|zstd-d' "age -d -i $T/key <$T/tools.zst.age | zstd -q -d -c >/dev/null"
for ((i = 0; i < ROUNDS; i++)); do
    for n in "${NAMES[@]}"; do
        /usr/bin/time -o "$T/time" -f '%e %U %S %M' bash -c "${CMD[$n]}" 2>/dev/null
        read -r w u s m <"$T/time"
        if [ "$(calc "$w < ${W[$n]}")" = 1 ]; then W[$n]=$w C[$n]=$(calc "$u + $s") M[$n]=$m; fi
    done
done
show() {
    printf '  %-22s wall %6.2fs  cpu %6.2fs  %7.1f MB/s (of cpu)  peak RSS %6d KiB\n' "$1" "${W[$1]}" \
        "${C[$1]}" "$(calc "$SIZE / 1000000 / (${C[$1]} > 0 ? ${C[$1]} : 1)")" "${M[$1]}"
}
ratio() { # label ours tools
    printf '  %-22s wall %.2fx  cpu %.2fx  rss %.2fx\n' "$1" "$(calc "${W[$2]} / ${W[$3]}")" \
        "$(calc "${C[$2]} / ${C[$3]}")" "$(calc "${M[$2]} / ${M[$3]}")"
}
echo "encode (backup direction):"
for n in "${NAMES[@]:0:6}"; do show "$n"; done
echo "decode (restore direction):"
for n in "${NAMES[@]:6:2}"; do show "$n"; done
echo "ratios (ours / tools; < 1 is better; ours also hashes both ends with sha256; the tools'"
echo "pipes run two processes at once, ours one: under load, compare cpu):"
ratio "encode zstd+age" ours-zstd3+age 'tools-zstd3|age'
ratio "encode age only" ours-age-only tools-age-only
ratio "encode zstd only" ours-zstd3-only tools-zstd3-only
ratio "decode age+zstd" ours-age-d+zstd-d 'tools-age-d|zstd-d'
printf '  compression: %d -> %d bytes (%.2fx; tools %d bytes)\n' "$SIZE" "$(stat -c %s "$T/ours.zst.age")" \
    "$(calc "$SIZE / $(stat -c %s "$T/ours.zst.age")")" "$(stat -c %s "$T/tools.zst.age")"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
# Same bytes either way (a check, not a timing).
if age -d -i "$T/key" "$T/ours.zst.age" | zstd -q -d | cmp -s - "$T/json"; then
    echo "  check: our output decodes with age -d | zstd -d: ok"
else
    echo "  check: our output does NOT decode with the tools"; exit 1
fi
