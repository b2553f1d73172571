#!/usr/bin/env bash
# containerfile-check.sh - the Containerfile cannot drift from the Makefile (no container engine
# runs in CI, so this is the Containerfile's test). Checks: the build stage is Debian 12 and its
# RUN lines are `make` invocations of targets that exist (`make -n TARGET` succeeds), deps and
# static among them (plus one apt-get that installs make itself, and nothing else); the final stage is FROM ${ETCD_IMAGE} (default an etcd 3.5 image), copies
# from the build stage exactly the files `make static` produced (every one, nothing else, to the
# same path in the image), runs nothing (no shell there), is non-root and labelled with VERSION.
#
# usage: BUILD=build tests/packaging/containerfile-check.sh   (after `make static`)
# Prints ok/FAIL lines and ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
exec python3 - "$BUILD" <<'PY'
import os, re, shlex, subprocess, sys

build = sys.argv[1]
passed = failed = 0

def ok(msg):
    global passed
    passed += 1
    print("ok " + msg)

def fail(msg, why):
    global failed
    failed += 1
    print("FAIL %s: %s" % (msg, why))

def check(cond, msg, why):
    (ok if cond else lambda m: fail(m, why))(msg)

# ---- parse: join continuations, drop comments, split into stages --------------------------
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, "tests/packaging")
from containerfile import instructions  # noqa: E402
global_args, stages = {}, []
for l in instructions():
    instr, _, rest = l.partition(" ")
    instr, rest = instr.upper(), rest.strip()
    if instr == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
        stages.append({"from": m.group(1), "name": (m.group(2) or "").lower(), "ins": []})
    elif not stages:
        if instr == "ARG":
            k, _, v = rest.partition("=")
            global_args[k] = v.strip('"')
    else:
        stages[-1]["ins"].append((instr, rest))

def expand(s, args):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), s)

check(len(stages) == 2, "two stages", "found %d" % len(stages))
if len(stages) < 2:
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1)
bstage, fstage = stages[0], stages[-1]

# ---- build stage ----------------------------------------------------------------------------
base = expand(bstage["from"], global_args)
check(re.search(r"debian:(12|bookworm)", base) is not None, "build stage is Debian 12 (%s)" % base,
      "base is %s" % base)
check(bstage["name"] == "build", "build stage is named build", "named %r" % bstage["name"])
workdir = next((r for i, r in bstage["ins"] if i == "WORKDIR"), "/")
runs = [r for i, r in bstage["ins"] if i == "RUN"]
targets = []
BOOTSTRAP = {"make"}  # what the build stage may apt-get before `make deps` (which needs make)
for r in runs:
    if r.startswith("["):
        import json
        words = json.loads(r)
    else:
        words = shlex.split(r)
    if words[:1] == ["apt-get"]:
        # apt-get update && apt-get install [opts] PKGS: only the bootstrap packages
        cmds, cur = [], []
        for w in words:
            if w == "&&":
                cmds.append(cur)
                cur = []
            else:
                cur.append(w)
        cmds.append(cur)
        pkgs, good = set(), True
        for c in cmds:
            args = [w for w in c[1:] if not w.startswith("-")]
            if c[:1] != ["apt-get"] or not args or args[0] not in ("update", "install"):
                good = False
            elif args[0] == "install":
                pkgs |= set(args[1:])
        check(good and pkgs <= BOOTSTRAP, "build stage bootstraps only %s with apt-get"
              % sorted(BOOTSTRAP), "RUN %s installs %s" % (r, sorted(pkgs - BOOTSTRAP)))
        continue
    if not words or words[0] != "make":
        fail("build stage RUN", "neither make nor the make bootstrap: %s" % r)
        continue
    ts = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    targets += ts
    for t in ts:
        p = subprocess.run(["make", "-n", "--no-print-directory", t], capture_output=True, text=True)
        check(p.returncode == 0, "make target %r exists (make -n %s)" % (t, t),
              (p.stderr or p.stdout).strip()[-300:])
check(targets[:2] == ["deps", "static"] or ("deps" in targets and "static" in targets),
      "build stage runs make deps static", "targets run: %s" % targets)

# ---- final stage ----------------------------------------------------------------------------
check(fstage["from"] in ("${ETCD_IMAGE}", "$ETCD_IMAGE"), "final stage is FROM ${ETCD_IMAGE}",
      "FROM %s" % fstage["from"])
img = global_args.get("ETCD_IMAGE", "")
check(re.search(r"etcd:v3\.5\.\d+$", img) is not None, "ETCD_IMAGE defaults to etcd 3.5 (%s)" % img,
      "default %r" % img)
fins = fstage["ins"]
bad = [(i, r) for i, r in fins if i in ("RUN", "SHELL", "ONBUILD")]
check(not bad, "final stage runs nothing (no shell assumed)", "has %s" % bad)
for i, r in fins:
    if i in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
        check(r.startswith("[") or r.startswith("CMD ["), "%s in exec form" % i, r)
users = [r for i, r in fins if i == "USER"]
check(users and users[-1].split(":")[0] not in ("0", "root"), "final stage is non-root (USER %s)"
      % (users[-1] if users else "-"), "USER %s" % users)
fargs = {r.partition("=")[0] for i, r in fins if i == "ARG"}
labels = " ".join(r for i, r in fins if i == "LABEL")
check("VERSION" in fargs and re.search(r'version="?\$\{?VERSION', labels) is not None,
      "LABEL carries the VERSION build arg", "ARGs %s, LABEL %s" % (fargs, labels))

# COPY --from=build SRC DEST: SRC (relative to WORKDIR) must be inside BUILD/static/rootfs and
# DEST the same path inside the image; together they must cover every file make static made.
root = os.path.normpath(os.path.join(build, "static", "rootfs"))
flist = os.path.join(build, "static", "files")
produced = None
if os.path.exists(flist):
    produced = {os.path.normpath(l.strip()[2:]) for l in open(flist) if l.strip()}
else:
    fail("make static output", "%s missing: run make static first" % flist)
copied = set()
for i, r in fins:
    if i not in ("COPY", "ADD"):
        continue
    words = r.split()
    opts = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    if "--from=build" not in opts or i == "ADD":
        fail("final stage %s" % i, "only COPY --from=build is expected: %s" % r)
        continue
    dest = paths[-1]
    for src in paths[:-1]:
        rel = os.path.normpath(os.path.relpath(src, workdir))
        if rel != root and not rel.startswith(root + "/"):
            fail("COPY %s" % src, "not inside %s (make static's output)" % root)
            continue
        inner = "/" + os.path.relpath(rel, root)
        want_dest = inner + ("/" if src.endswith("/") else "")
        check(os.path.normpath(dest) == os.path.normpath(want_dest), "COPY %s -> %s" % (src, dest),
              "destination should be %s" % want_dest)
        if produced is None:
            continue
        sub = os.path.relpath(rel, root)
        hit = {f for f in produced if sub == "." or f == sub or f.startswith(sub + "/")}
        check(hit, "COPY %s matches files make static produced (%d)" % (src, len(hit)),
              "make static produced nothing there")
        copied |= hit
if produced is not None:
    check(copied == produced, "the final stage gets every file of the bundle",
          "not copied: %s" % sorted(produced - copied))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
