#!/usr/bin/env bash
# build-stage.sh - acts out the Containerfile's build stage without a container engine: a fresh
# Debian 12 minbase root (debootstrap, cached in $DEB12_DIR, default /var/tmp/etcd-recovery-deb12,
# outside build/ whose *.d files the Makefile includes), the source copied in as
# `COPY . .` would (minus .containerignore's build/ and .git), then the stage's RUN lines exactly
# as the Containerfile has them, run with chroot. Then the final stage's COPY sources must exist
# and the bundle must run `--version` in an empty chroot.
#
# Heavy (downloads and installs `make deps`'s packages, ~1 GB, several minutes), so it is not part
# of `make test`; run it by hand after changing the Containerfile, the Makefile's deps or static.
# usage: tests/packaging/build-stage.sh      (root; debootstrap; Debian's mirror)
# Prints ok/FAIL lines and ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
DEB12_DIR=${DEB12_DIR:-/var/tmp/etcd-recovery-deb12}
BASE=$DEB12_DIR/root
WORK=$DEB12_DIR/work
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo 0.0.0)}

passed=0 failed=0 MOUNTED="" JAIL=""
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}
cleanup() {
    [ -n "$JAIL" ] && rm -rf "$JAIL"
    if [ -n "$MOUNTED" ] && ! umount "$MOUNTED"; then
        echo "build-stage: $MOUNTED still mounted; $WORK left in place" >&2
        return
    fi
    # The work root (~2 GB with make deps's packages) is rebuilt from $BASE on every run.
    grep -q " $WORK/" /proc/mounts || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { fail "setup" "needs root"; finish; }
command -v debootstrap >/dev/null || { fail "setup" "apt-get install debootstrap"; finish; }
if [ ! -x "$BASE/bin/sh" ]; then
    mkdir -p "$(dirname "$BASE")"
    debootstrap --variant=minbase bookworm "$BASE.tmp" >"$DEB12_DIR/debootstrap.log" 2>&1 ||
        { fail "debootstrap" "$(tail -n 3 "$DEB12_DIR/debootstrap.log")"; finish; }
    mv "$BASE.tmp" "$BASE"
fi

# A fresh copy each run: the stage must work from a bare Debian 12.
rm -rf "$WORK"
cp -a "$BASE" "$WORK"
ok "fresh Debian 12 minbase root"
# As in Debian's container images: no service starts in a build.
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 755 "$WORK/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$WORK/etc/resolv.conf"
mount -t proc proc "$WORK/proc" && MOUNTED=$WORK/proc

# The build stage's instructions, read from the Containerfile.
stage=$(python3 - <<'PY'
import re, sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, "tests/packaging")
from containerfile import instructions
in_build = False
for l in instructions():
    instr, _, rest = l.partition(" ")
    if instr.upper() == "FROM":
        in_build = re.search(r"\sAS\s+build$", l, re.I) is not None
    elif in_build and instr.upper() in ("RUN", "WORKDIR", "COPY"):
        print("%s\t%s" % (instr.upper(), rest.strip()))
PY
)
workdir=/
while IFS=$'\t' read -r instr rest; do
    case $instr in
    WORKDIR) workdir=$rest; mkdir -p "$WORK$workdir" ;;
    COPY)
        [ "$rest" = ". ." ] || { fail "COPY" "only 'COPY . .' is acted out: $rest"; continue; }
        # .containerignore: build, .git, objects, corpus
        tar -C "$ROOT" --exclude=./build --exclude=./.git --exclude='*.o' --exclude='*.a' \
            --exclude=./tests/fuzz/corpus -cf - . | tar -C "$WORK$workdir" -xf -
        ok "COPY . . into $workdir"
        ;;
    RUN)
        log=$DEB12_DIR/run.log
        start=$SECONDS
        if chroot "$WORK" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            DEBIAN_FRONTEND=noninteractive VERSION="$VERSION" /bin/sh -c "cd $workdir && $rest" \
            >"$log" 2>&1; then
            ok "RUN $rest ($((SECONDS - start)) s)"
        else
            fail "RUN $rest" "$(tail -n 8 "$log" | tr '\n' ' ')"
            finish
        fi
        ;;
    esac
done <<<"$stage"

# The final stage's COPY --from=build sources, and the bundle in an empty chroot.
while read -r src dest; do
    if [ -e "$WORK$src" ]; then ok "COPY --from=build $src -> $dest exists"; else
        fail "COPY --from=build $src" "missing after the build stage"
    fi
done < <(sed -n 's/^COPY --from=build \([^ ]*\) \([^ ]*\)$/\1 \2/p' Containerfile)
JAIL=$(mktemp -d "${TMPDIR:-/tmp}/build-stage-chroot.XXXXXX")
chmod 755 "$JAIL"
cp -a "$WORK$workdir/build/static/rootfs/." "$JAIL/"
for p in reset-member etcd-agent; do
    out=$(chroot --userspec=65532:65532 "$JAIL" "/usr/bin/$p" --version 2>&1)
    if [[ $out == "$p $VERSION" ]]; then ok "$p --version in an empty chroot: $out"; else
        fail "$p --version" "'$out' (want '$p $VERSION')"
    fi
done
umount "$WORK/proc" && MOUNTED=""
finish
