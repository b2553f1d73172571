#!/usr/bin/env bash
# member_list.sh - issue 2's benchmark: 100 MemberList calls over one connection
# (build/tests/bench/bench_member_list) against `etcdctl member list` run 100 times, on the same
# fresh 3-member TLS cluster (tests/cluster.sh), both against member 0. Prints both and the ratio.
# usage: tests/bench/member_list.sh [--build DIR] [--calls N]
set -u
cd "$(dirname "$0")/../.."
build=build calls=100
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--calls N]" >&2; exit 2 ;;
    esac
done
bench=$build/tests/bench/bench_member_list
[ -x "$bench" ] || { echo "member_list.sh: $bench not built (make tests)" >&2; exit 1; }

eval "$(tests/cluster.sh up 3)" || exit 1
trap 'tests/cluster.sh down' EXIT
ep0=$(tests/cluster.sh client-url 0)

out=$(ETCD_TEST_ENDPOINTS=$ep0 "$bench" "$calls") || { echo "$out"; exit 1; }
echo "$out"
c_ms=$(echo "$out" | sed -n 's/^total_ms=//p')

# etcdctl directly (not through cluster.sh's wrapper, whose bash overhead is not etcdctl's)
start=$(date +%s%N)
for _ in $(seq 1 "$calls"); do
    ETCDCTL_API=3 etcdctl --endpoints "$ep0" --cacert "$ETCD_TEST_CACERT" \
        --cert "$ETCD_TEST_CERT" --key "$ETCD_TEST_KEY" member list >/dev/null ||
        { echo "member_list.sh: etcdctl failed" >&2; exit 1; }
done
e_ms=$((($(date +%s%N) - start) / 1000000))

echo "etcdctl member list x $calls: $e_ms ms"
echo "bench_member_list x $calls (one connection): $c_ms ms"
awk -v e="$e_ms" -v c="$c_ms" 'BEGIN { printf "ratio etcdctl/ours: %.1fx\n", e / c }'
