#!/usr/bin/env bash
# fresh_machine.sh - proves the README's first commands on a fresh Debian 12 machine: a minbase
# root from debootstrap (the host's Debian mirror, read from its apt config; the root cached as a
# tarball in $FRESH_CACHE so reruns skip debootstrap), the clean checkout (git HEAD, not the
# working tree) copied in, then in a chroot (/proc, /sys, /dev mounted and always unmounted; a
# policy-rc.d that exits 101 so no package starts a daemon on the host's ports; the host's
# /var/cache/apt/archives bind-mounted so reruns download no package): `apt-get install make` as a
# user would, `make demo` to success, then `make deps && make tests` (separate makes: never two
# goals of one make under --jobs). Prints each phase's time; any failure fails the run (exit 1).
# What the commands do is the Makefile's and tests/demo.sh's business.
#
# usage: tests/fresh/fresh_machine.sh    (root; debootstrap; ~1 GB of packages on the first run)
# Prints ok/FAIL lines and ends with "N passed, N failed".
set -uo pipefail
{ # the whole script is read before it runs: editing it during a run cannot change that run
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
FRESH_CACHE=${FRESH_CACHE:-/var/cache/etcd-recovery}
TARBALL=$FRESH_CACHE/debian12-minbase.tar.zst
ARCHIVES=/var/cache/apt/archives

passed=0 failed=0 WORK="" MOUNTS=()
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
    exit
}
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -R -l "${MOUNTS[$i]}" ||
            echo "fresh: cannot unmount ${MOUNTS[$i]}" >&2
    done
    MOUNTS=()
    if [ -n "$WORK" ]; then
        if grep -q " $WORK/" /proc/mounts; then
            echo "fresh: something is still mounted under $WORK; left in place" >&2
        else
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# phase NAME CMD...: runs CMD, prints its time; a failure shows the log's tail and ends the run.
phase() {
    local name=$1 start=$SECONDS log
    shift
    log=$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').log
    echo "== $name" >&2
    if "$@" >"$log" 2>&1; then
        ok "$name ($((SECONDS - start)) s)"
    else
        fail "$name ($((SECONDS - start)) s)" "exit $?; last lines of $log:"
        tail -n 25 "$log" | sed 's/^/    | /'
        cp "$log" "${TMPDIR:-/tmp}/fresh-machine-failed.log" 2>/dev/null &&
            echo "    (whole log: ${TMPDIR:-/tmp}/fresh-machine-failed.log)"
        finish
    fi
}

[ "$(id -u)" = 0 ] || { fail setup "needs root"; finish; }
for p in debootstrap zstd git chroot; do
    command -v "$p" >/dev/null || { fail setup "$p missing (make deps)"; finish; }
done
git -C "$REPO" rev-parse --verify -q HEAD >/dev/null || { fail setup "$REPO is not a git checkout"; finish; }

# The host's Debian sources for its own release (base, -updates, -security), as apt has them.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ "$codename" = bookworm ] || { fail setup "the host is not Debian 12 ($codename)"; finish; }
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)' |
    awk -v c="$codename" '$4 == "Packages" && ($2 == c || index($2, c "-") == 1) {print $1, $2, $3}' | sort -u)
mirror=$(awk -v c="$codename" '$2 == c {print $1; exit}' <<<"$sources")
[ -n "$mirror" ] || { fail setup "no apt source for $codename in the host's apt config"; finish; }

mkdir -p "$FRESH_CACHE" /var/tmp
WORK=$(mktemp -d /var/tmp/etcd-recovery-fresh.XXXXXX) # not under build/: make reads *.d there
ROOT=$WORK/root

# 1. the base root: debootstrap once, then the cached tarball.
make_base() {
    debootstrap --variant=minbase "$codename" "$WORK/base" "$mirror" &&
        tar -C "$WORK/base" --numeric-owner -cf - . | zstd -q -T0 -o "$TARBALL.tmp" &&
        mv "$TARBALL.tmp" "$TARBALL" && rm -rf "$WORK/base"
}
if [ ! -s "$TARBALL" ]; then
    phase "debootstrap Debian 12 minbase (cached in $TARBALL)" make_base
fi
unpack() { mkdir -p "$ROOT" && zstd -q -dc "$TARBALL" | tar -C "$ROOT" --numeric-owner -xf -; }
phase "fresh root from $(basename "$TARBALL")" unpack

# 2. the clean checkout (HEAD), as `git clone` would give it, minus .git.
copy_src() { mkdir -p "$ROOT/src" && git -C "$REPO" archive --format=tar HEAD | tar -C "$ROOT/src" -xf -; }
phase "copy git HEAD $(git -C "$REPO" rev-parse --short HEAD) into /src" copy_src

# 3. the root's set-up: apt sources, no daemons, the host's package cache and name resolution.
setup_root() {
    local uri rel comp
    : >"$ROOT/etc/apt/sources.list"
    while read -r uri rel comp; do
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $rel $comp"
    done <<<"$sources" >"$ROOT/etc/apt/sources.list"
    # other helpers' apt runs on the host share the bind-mounted archives: wait for their locks
    echo 'DPkg::Lock::Timeout "600";' >"$ROOT/etc/apt/apt.conf.d/90fresh-lock-timeout"
    # a throw-away root: dpkg need not fsync every file (as Debian's container images do)
    echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/90fresh-unsafe-io"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    # a throwaway root: dpkg need not fsync every file of ~700 packages (as container images do);
    # the commands under test are unchanged
    mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/unsafe-io"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # the host's extra CA for node (a TLS-intercepting egress proxy's), as the host's network
    # settings: without it npm cannot reach the registry from the root (make deps, tests/s3)
    if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then
        cp "$NODE_EXTRA_CA_CERTS" "$ROOT/etc/host-extra-ca.crt"
    fi
    mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
    mount -t sysfs sysfs "$ROOT/sys" && MOUNTS+=("$ROOT/sys")
    mount --rbind /dev "$ROOT/dev" && MOUNTS+=("$ROOT/dev") && mount --make-rslave "$ROOT/dev"
    mkdir -p "$ROOT$ARCHIVES" && mount --bind "$ARCHIVES" "$ROOT$ARCHIVES" && MOUNTS+=("$ROOT$ARCHIVES")
    cat "$ROOT/etc/apt/sources.list"
}
# not through phase(): the mounts must be made in this shell for cleanup to see them
log=$WORK/setup.log
if setup_root >"$log" 2>&1; then ok "chroot set up (proc, sys, dev, $ARCHIVES; policy-rc.d 101)"; else
    fail "chroot set-up" "$(tail -n 5 "$log" | tr '\n' ' ')"
    finish
fi

in_root() { # CMD: a login-free root shell in /src with a clean environment
    local ca=()
    [ -f "$ROOT/etc/host-extra-ca.crt" ] && ca=(NODE_EXTRA_CA_CERTS=/etc/host-extra-ca.crt)
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${ca[@]}" /bin/bash -c "cd /src && $1"
}

# 4. what the user does: get make (the one thing make deps cannot install), then the README.
phase "apt-get install make" in_root 'apt-get update -qq && apt-get install -y -qq make >/dev/null'
phase "make demo (first command: deps, build, demo)" in_root 'make demo'
phase "make deps (again: all present)" in_root 'make deps | tee /dev/stderr | grep -q "all present"'
phase "make tests" in_root 'make tests'
finish
}
