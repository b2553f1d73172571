#!/usr/bin/env bash
# monitoring.sh - the monitoring manifests (manifests/monitoring/): the PrometheusRule's groups pass `promtool check rules`
# and the unit tests in rules_test.yaml (every alert fires on its series and stays silent
# otherwise); every metric name the rules and the Grafana dashboard use is one the agent exports
# (names read from the agent's source; Prometheus' own `up` and functions excepted), and that
# check itself fails on a name the agent does not export.
# usage: tests/e2e/monitoring.sh    Prints ok/FAIL lines and "N passed, N failed, N skipped";
# without promtool everything is skipped (exit 77), never passed.
# shellcheck source=../lib/lib.bash
source "$(dirname "$0")/../lib/lib.bash"
tmp=$WORK
command -v promtool >/dev/null || skip_all "promtool not installed (Debian package prometheus)"

python3 - manifests/monitoring/prometheusrule.yaml "$tmp/rules.yaml" <<'PY' || fail "extract rules"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["kind"] == "PrometheusRule"
yaml.safe_dump({"groups": doc["spec"]["groups"]}, open(sys.argv[2], "w"), sort_keys=False)
PY
cp tests/monitoring/rules_test.yaml "$tmp/"
if promtool check rules "$tmp/rules.yaml" >"$tmp/out" 2>&1; then ok "promtool check rules"; else fail "promtool check rules" "$(tail -3 "$tmp/out")"; fi
if (cd "$tmp" && promtool test rules rules_test.yaml) >"$tmp/out" 2>&1; then
    ok "promtool test rules (every alert fires and stays silent)"
else
    fail "promtool test rules" "$(tail -20 "$tmp/out")"
fi
# every alert in the rules has a test that expects it to fire
untested=$(python3 - "$tmp/rules.yaml" tests/monitoring/rules_test.yaml <<'PY'
import sys, yaml
rules = {r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
fired = {a["alertname"] for t in yaml.safe_load(open(sys.argv[2]))["tests"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")}
print(" ".join(sorted(rules - fired)))
PY
)
if [ -z "$untested" ]; then ok "every alert has a firing test"; else fail "every alert has a firing test" "$untested"; fi

python3 -c 'import json,sys; json.load(open(sys.argv[1]))' manifests/monitoring/dashboard.json &&
    ok "dashboard is JSON" || fail "dashboard is JSON"

# metric names: used by rules and dashboard vs exported by the agent
grep -ohE '"etcd_agent_[a-z0-9_]+"|etcd_agent_[a-z0-9_]+' agent/*.c | tr -d '"' | sort -u >"$tmp/exported"
used_names() {
    python3 - "$@" <<'PY'
import json, re, sys, yaml
exprs = []
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    exprs += [r["expr"] for r in g["rules"]]
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "expr":
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(open(sys.argv[2])))
exprs += sys.argv[3:]
names = set()
for e in exprs:
    e = re.sub(r'\{[^}]*\}', '', e)  # label matchers
    e = re.sub(r'"[^"]*"', '', e)
    for tok in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', e):
        if tok.startswith("etcd_") or tok == "up":
            names.add(re.sub(r'_(bucket|sum|count)$', '', tok) if tok.endswith(("_bucket", "_sum", "_count")) and "duration" in tok else tok)
print("\n".join(sorted(names)))
PY
}
missing() { used_names "$tmp/rules.yaml" manifests/monitoring/dashboard.json "$@" | grep -vx up | grep -vxFf "$tmp/exported"; }
m=$(missing)
if [ -z "$m" ]; then ok "rules and dashboard use only metrics the agent exports ($(used_names "$tmp/rules.yaml" manifests/monitoring/dashboard.json | wc -l) names)"; else fail "unknown metric names" "$m"; fi
if [ -n "$(missing 'etcd_agent_no_such_metric > 0')" ]; then ok "the name check catches an unknown metric"; else fail "the name check catches an unknown metric"; fi
finish
