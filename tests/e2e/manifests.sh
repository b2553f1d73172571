#!/usr/bin/env bash
# manifests.sh - the kustomize manifests render, parse, pass offline schema validation
# (kubernetes-models from npm, installed once into $BUILD/npm), have HyperShift's shape, and
# their flags/env/paths work with the real binaries: reset-member --dry-run, the etcd container's
# command (reset-member exec, then the real etcd 3.4) and etcd-agent run
# with the manifest's args and env (paths moved under a temp root, addresses mapped to a real
# 3-member cluster from tests/cluster.sh), the etcd container's probes are asked of the agent,
# unknown fields are caught with tsc over the kubernetes-models types,
# and the agent's syscalls are checked against manifests/seccomp/etcd-agent.json.
#
# usage: BUILD=build tests/e2e/manifests.sh        (needs kubectl, python3 yaml, node + npm)
# Prints ok/FAIL lines and ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/../lib/lib.bash"
KM_VERSION=4.5.1 # kubernetes-models
TS_VERSION=5     # typescript: its excess-property check rejects unknown fields
TMP=$WORK

# run a checker that prints ok/FAIL lines and a count line; add its counts to ours
sub() {
    local out
    out=$("$@" 2>&1)
    sub_result "$(basename "$2") $3" "$out"
}

# ---- render and parse -----------------------------------------------------------------------
if ! command -v kubectl >/dev/null; then
    fail "kubectl" "not installed: needed for kubectl kustomize (it is not a Debian package)"
    finish
fi
for t in base:manifests restore:manifests/restore mtls:manifests/agent-mtls; do
    name=${t%%:*} dir=${t#*:}
    if kubectl kustomize "$dir" >"$TMP/$name.yaml" 2>"$TMP/$name.err"; then
        ok "kubectl kustomize $dir renders"
    else
        fail "kubectl kustomize $dir" "$(head -c 400 "$TMP/$name.err")"
        finish
    fi
    if kinds=$(python3 tests/packaging/manifests_check.py tojson "$TMP/$name.yaml" \
        "$TMP/$name.json"); then
        ok "rendered $name parses as YAML: $kinds"
    else
        fail "rendered $name" "does not parse"
        finish
    fi
done

# ---- offline schema validation (kubernetes-models; typescript for unknown fields) -------------
NPM_DIR=$BUILD/npm
if [ ! -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ] ||
    [ ! -x "$NPM_DIR/node_modules/.bin/tsc" ]; then
    if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
        fail "schema validation" "node/npm are not installed (apt-get install nodejs npm)"
    else
        mkdir -p "$NPM_DIR"
        if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent \
            "kubernetes-models@$KM_VERSION" "typescript@$TS_VERSION" >"$TMP/npm.log" 2>&1; then
            fail "schema validation" "npm install kubernetes-models@$KM_VERSION typescript@$TS_VERSION failed (registry unreachable?): $(tail -c 300 "$TMP/npm.log")"
        fi
    fi
fi
if [ -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ]; then
    for name in base restore mtls; do
        out=$(node tests/packaging/validate.js "$NPM_DIR" "$TMP/$name.json" 2>&1)
        while IFS= read -r l; do
            case $l in
            ok\ *) ok "$name: ${l#ok }" ;;
            FAIL\ *) fail "$name schema" "${l#FAIL }" ;;
            *) [ -n "$l" ] && fail "$name schema" "$l" ;;
            esac
        done <<<"$out"
    done
fi

# Unknown fields (a typo such as readOnlyRootFileSystem validates above): every object as a
# TypeScript literal of its kubernetes-models interface; tsc's excess-property check rejects
# any field the API does not have. A control object with a misspelt field must be rejected.
if [ -x "$NPM_DIR/node_modules/.bin/tsc" ]; then
    TSDIR=$(mktemp -d "$NPM_DIR/tscheck.XXXXXX")
    python3 - "$TSDIR" "$TMP/base.json" "$TMP/restore.json" "$TMP/mtls.json" <<'PY'
import json, os, sys
out, files = sys.argv[1], []
for path in sys.argv[2:]:
    tag = os.path.basename(path)[:-len(".json")]
    objs = [o for o in json.load(open(path)) if not o["metadata"]["name"].startswith("negative-control")]
    if tag == "base":
        bad = json.loads(json.dumps(next(o for o in objs if o["kind"] == "StatefulSet")))
        bad["metadata"]["name"] = "negative-control"
        bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
        objs.append(bad)
    for i, o in enumerate(objs):
        grp = o["apiVersion"] if "/" in o["apiVersion"] else "v1"
        name = "%s__%s__%s" % (tag, o["kind"], o["metadata"]["name"])
        with open("%s/%s.ts" % (out, name), "w") as f:
            f.write('import { I%s as T } from "kubernetes-models/%s/%s";\n' % (o["kind"], grp, o["kind"]))
            f.write("export const o: T = %s;\n" % json.dumps(o, indent=1))
        files.append(name + ".ts")
json.dump({"compilerOptions": {"strict": True, "noEmit": True, "skipLibCheck": True, "types": [],
                               "moduleResolution": "node", "module": "commonjs", "target": "es2020"},
           "files": files}, open(out + "/tsconfig.json", "w"))
PY
    "$NPM_DIR/node_modules/.bin/tsc" -p "$TSDIR/tsconfig.json" >"$TMP/tsc.out" 2>&1
    for f in "$TSDIR"/*.ts; do
        n=$(basename "$f" .ts)
        errs=$(grep -F "$n.ts(" "$TMP/tsc.out" | head -3 | cut -c1-300)
        case $n in
        *negative-control*)
            if [ -n "$errs" ]; then ok "unknown-field control is rejected by tsc"; else
                fail "unknown-field control" "a misspelt field passed tsc"
            fi ;;
        *)
            if [ -z "$errs" ]; then ok "${n//__/ } has no unknown or mistyped field (tsc)"; else
                fail "${n//__/ } fields" "$errs"
            fi ;;
        esac
    done
    rm -rf "$TSDIR"
elif [ -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ]; then
    fail "unknown fields" "typescript is missing from $NPM_DIR (rm -rf $NPM_DIR to reinstall)"
fi

# ---- shape ----------------------------------------------------------------------------------
sub python3 tests/packaging/manifests_check.py static "$TMP/base.yaml" "$TMP/restore.yaml" \
    manifests/seccomp/etcd-agent.json

# ---- the binaries with the manifests' flags, against a real cluster --------------------------
if ! cluster_up 3 >/dev/null; then
    fail "cluster" "tests/cluster.sh up 3 failed"
    finish
fi
sub python3 tests/packaging/manifests_check.py run "$TMP/base.yaml" "$BUILD" \
    manifests/seccomp/etcd-agent.json
sub python3 tests/packaging/manifests_check.py overlay "$TMP/base.yaml" "$TMP/restore.yaml" "$BUILD"
# the agent-mtls variant: probes on the plain port, snapshots to mTLS clients only
sub python3 tests/packaging/manifests_check.py run "$TMP/mtls.yaml" "$BUILD"
finish
