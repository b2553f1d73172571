#!/usr/bin/env bash
# etcd35.sh - puts etcd 3.5 (Debian trixie's etcd-server and etcd-client) beside the system's
# etcd 3.4: `apt-get download` with a separate sources list (the host's Debian mirror, read from
# its apt config; signed by the Debian archive keyring), .debs cached in $ETCD35_CACHE, extracted
# with `dpkg-deb -x` into DEST (default build/etcd-3.5; binaries in DEST/bin). Never installs
# anything. Fails unless `etcd --version` there says 3.5. Idempotent and quick once extracted.
# Running the suites against it is tests/run.sh's business (ETCD_BIN_DIR).
#
# usage: tests/etcd35.sh [DEST]     prints DEST/bin on success
set -euo pipefail
cd "$(dirname "$0")/.."

dest=${1:-build/etcd-3.5}
suite=${ETCD35_SUITE:-trixie}
cache=${ETCD35_CACHE:-/var/cache/etcd-recovery/etcd-3.5}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "etcd35: $*" >&2; exit 1; }
is35() { # (no pipe into grep -q: under pipefail etcd's SIGPIPE would fail the check)
    local v
    [ -x "$1/etcd" ] && v=$("$1/etcd" --version 2>/dev/null) && [[ $v == "etcd Version: 3.5."* ]]
}

if is35 "$dest/bin"; then # already there: nothing to download or extract
    echo "$dest/bin"
    exit 0
fi

# The .debs: from the cache, else downloaded once (needs the network and a writable cache).
debs=()
pick_cached() {
    local p f
    debs=()
    for p in etcd-server etcd-client; do
        f=$(ls -1 "$cache/${p}_"3.5.*.deb 2>/dev/null | sort -V | tail -1)
        [ -n "$f" ] || return 1
        debs+=("$f")
    done
}
if ! pick_cached; then
    command -v apt-get >/dev/null || die "apt-get missing"
    [ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"
    # The host's Debian mirror: the URI apt uses for the host's own release (never named here).
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk -v c="$codename" '$2 == c {print $1; exit}')
    [ -n "$mirror" ] || die "no apt source for the host's release '$codename' in the apt config"
    mkdir -p "$cache" || die "cannot create $cache (run as root once)"
    apt_dir=$(mktemp -d "${TMPDIR:-/tmp}/etcd35-apt.XXXXXX")
    trap 'rm -rf "$apt_dir"' EXIT
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
    opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=0
        -o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User=root)
    echo "etcd35: fetching etcd-server and etcd-client from $suite" >&2
    apt-get "${opts[@]}" -qq update >&2 || die "apt-get update of $suite failed"
    ver=$(apt-cache "${opts[@]}" show etcd-server 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
    case $ver in 3.5.*) ;; *) die "$suite's etcd-server is '$ver', not 3.5" ;; esac
    (cd "$apt_dir" && apt-get "${opts[@]}" -qq download "etcd-server=$ver" "etcd-client=$ver") >&2 ||
        die "apt-get download failed"
    cp "$apt_dir"/etcd-server_*.deb "$apt_dir"/etcd-client_*.deb "$cache/" || die "cannot write $cache"
    pick_cached || die "the downloaded .debs are not in $cache"
fi

rm -rf "$dest"
mkdir -p "$dest/root" "$dest/bin"
for d in "${debs[@]}"; do
    dpkg-deb -x "$d" "$dest/root" || die "dpkg-deb -x $d failed"
done
# No init script, unit or docs: only the programs are used (and no *.d dir for make to read).
rm -rf "$dest/root/etc" "$dest/root/usr/share" "$dest/root/usr/lib"
# The programs: etcd and etcdutl (etcd-server), etcdctl (etcd-client); etcdutl only if present.
for p in etcd etcdctl etcdutl; do
    [ -x "$dest/root/usr/bin/$p" ] && ln -sf "../root/usr/bin/$p" "$dest/bin/$p"
done
is35 "$dest/bin" || die "$dest/bin/etcd --version does not say 3.5: $("$dest/bin/etcd" --version 2>&1)"
echo "etcd35: $("$dest/bin/etcd" --version | sed -n 1p) in $dest/bin ($(ls "$dest/bin" | tr '\n' ' '))" >&2
echo "$dest/bin"
