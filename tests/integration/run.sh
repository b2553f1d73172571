#!/usr/bin/env bash
# run.sh - run integration test binaries by hand, each against a fresh 3-member TLS cluster.
# usage: tests/integration/run.sh [BINARY...]   (default: every build/tests/integration/test_*)
set -u
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- build/tests/integration/test_*
rc=0
for t in "$@"; do
    [ -x "$t" ] || { echo "not built: $t" >&2; rc=1; continue; }
    eval "$(tests/cluster.sh up 3)" || { rc=1; continue; }
    trap 'tests/cluster.sh down' EXIT
    "$t" || rc=1
    tests/cluster.sh down
    trap - EXIT
done
exit $rc
