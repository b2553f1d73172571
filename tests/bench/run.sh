#!/usr/bin/env bash
# run.sh - runs every benchmark (tests/bench/*.sh) in turn; each compares against etcdctl or
# etcd's own endpoints in the same run and prints its figures and ratios. Timings are
# information, never pass/fail. usage: tests/bench/run.sh [--build DIR] [NAME...]
set -u
cd "$(dirname "$0")/../.."
build=build
if [ "${1:-}" = --build ]; then build=$2; shift 2; fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls tests/bench/*.sh | xargs -n1 basename | sed 's/\.sh$//' | grep -v '^run$'))
rc=0
for n in "${names[@]}"; do
    echo "=== bench: $n ($(date -u +%H:%M:%S))"
    bash "tests/bench/$n.sh" --build "$build" || { echo "bench $n failed"; rc=1; }
    echo
done
exit $rc
