#!/usr/bin/env python3
"""manifests_check.py - checks of the rendered manifests, for tests/e2e/manifests.sh.

  tojson RENDERED.yaml OUT.json               parse; write the objects (plus a deliberately
                                               invalid one for validate.js) as JSON
  static BASE.yaml RESTORE.yaml SECCOMP.json   the drop-in shape (names, ports, env, paths,
                                               probes, security) and the seccomp profile
  run BASE.yaml BUILD [SECCOMP.json]           the manifests' args/env/paths run the real
                                               binaries against the cluster in $CLUSTER_DIR
                                               (the etcd container's command: reset-member
                                               exec, then a real etcd on free ports)
                                               (and the agent's syscalls fit the profile)
  overlay BASE.yaml RESTORE.yaml BUILD         the restore overlay's source is accepted
Prints "ok ..."/"FAIL ...: why" and ends with "N passed, N failed". Rendering, YAML parsing and
schema validation are manifests.sh's and validate.js's.
"""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

passed = failed = 0
NAMESPACE = "testns"
POD = "etcd-0"
WAIT = float(os.environ.get("E2E_WAIT_SECONDS", "90"))


def ok(msg):
    global passed
    passed += 1
    print("ok " + msg, flush=True)


def fail(msg, why):
    global failed
    failed += 1
    print("FAIL %s: %s" % (msg, why), flush=True)


def check(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        fail(msg, why)
    return cond


def finish():
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def load(path):
    return [o for o in yaml.safe_load_all(open(path)) if o]


def find(objs, kind, name):
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    return None


def container(pod, name):
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        if c["name"] == name:
            return c
    return None


def env_of(c):
    """Container env with fieldRefs resolved for pod etcd-0 and $(VAR) expanded, as the
    kubelet does; configMap refs as '<configMapKeyRef>'."""
    out = {}
    for e in c.get("env", []):
        if "value" in e:
            v = re.sub(r"\$\((\w+)\)", lambda m: out.get(m.group(1), m.group(0)), e["value"])
        else:
            ref = e["valueFrom"]
            if "fieldRef" in ref:
                v = {"metadata.name": POD, "metadata.namespace": NAMESPACE}[
                    ref["fieldRef"]["fieldPath"]]
            else:
                v = "<configMapKeyRef>"
        out[e["name"]] = v
    return out


def port_of(c, name_or_num):
    if isinstance(name_or_num, int):
        return name_or_num
    for p in c.get("ports", []):
        if p["name"] == name_or_num:
            return p["containerPort"]
    return None


def exec_program(cmd):
    """The program `reset-member exec ... -- PROG ...` starts, or None."""
    if "--" not in cmd or cmd.index("--") + 1 >= len(cmd):
        return None
    return cmd[cmd.index("--") + 1]


def flags(args):
    d = {}
    for a in args:
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            d[k] = v
    return d


# ---- static -----------------------------------------------------------------------------------
def cmd_static(base_path, restore_path, seccomp_path):
    objs = load(base_path)
    sts = find(objs, "StatefulSet", "etcd")
    if not check(sts is not None, "StatefulSet etcd exists"):
        finish()
    s = sts["spec"]
    pod = s["template"]["spec"]
    check(s["replicas"] == 3 and s["podManagementPolicy"] == "Parallel"
          and s["serviceName"] == "etcd-discovery",
          "StatefulSet: 3 replicas, Parallel, serviceName etcd-discovery",
          "%s %s %s" % (s.get("replicas"), s.get("podManagementPolicy"), s.get("serviceName")))
    vct = s["volumeClaimTemplates"][0]
    check(vct["metadata"]["name"] == "data" and vct["spec"]["accessModes"] == ["ReadWriteOnce"]
          and vct["spec"]["resources"]["requests"]["storage"] == "8Gi",
          "volumeClaimTemplate data: 8Gi ReadWriteOnce", str(vct))
    inits = [c["name"] for c in pod.get("initContainers", [])]
    names = [c["name"] for c in pod["containers"]]
    check(inits == ["reset-member"] and names == ["etcd", "etcd-agent"],
          "containers: init reset-member; etcd, etcd-agent", "%s %s" % (inits, names))
    rm, etcd, agent = container(pod, "reset-member"), container(pod, "etcd"), container(pod, "etcd-agent")
    if not (rm and etcd and agent):
        finish()

    # data volume at /var/lib in every container, data dir /var/lib/data
    for c in (rm, etcd, agent):
        mounts = {m["name"]: m for m in c.get("volumeMounts", []) if not m.get("subPath")}
        check("data" in mounts and mounts["data"]["mountPath"] == "/var/lib",
              "%s mounts the data volume at /var/lib" % c["name"], str(mounts.get("data")))
        e = env_of(c)
        check(e.get("ETCD_DATA_DIR") == "/var/lib/data", "%s: ETCD_DATA_DIR=/var/lib/data" % c["name"],
              str(e.get("ETCD_DATA_DIR")))
    check(mounts["data"].get("readOnly") is True, "etcd-agent mounts the data volume read-only")
    # ... but for one writable directory of it: the divergent marker, where reset-member reads it
    subs = [(c["name"], m) for c in (rm, etcd, agent) for m in c.get("volumeMounts", []) if m.get("subPath")]
    am = [m for n, m in subs if n == "etcd-agent"]
    ea, er = env_of(agent), env_of(rm)
    amark, rmark = ea.get("ETCD_AGENT_DIVERGENT_MARKER", ""), er.get("ETCD_DIVERGENT_MARKER", "")
    check(len(subs) == 1 and len(am) == 1 and am[0]["name"] == "data" and not am[0].get("readOnly")
          and amark == am[0]["mountPath"].rstrip("/") + "/divergent"
          and rmark == "/var/lib/" + am[0]["subPath"] + "/divergent",
          "the agent writes only the divergent marker: data subPath markers writable, "
          "ETCD_AGENT_DIVERGENT_MARKER inside it, reset-member's ETCD_DIVERGENT_MARKER the same file",
          "subPath mounts %s, agent %r, reset-member %r" % (subs, amark, rmark))

    # HyperShift's env names on reset-member and etcd
    want = ["ETCD_NAME", "ETCD_DATA_DIR", "ETCD_INITIAL_ADVERTISE_PEER_URLS", "ETCD_INITIAL_CLUSTER",
            "ETCDCTL_ENDPOINTS", "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"]
    e = env_of(rm)
    check(all(k in e for k in want), "reset-member has HyperShift's env names",
          "missing %s" % [k for k in want if k not in e])
    ee = env_of(etcd)
    ic = "etcd-0=https://etcd-0.etcd-discovery.%s.svc:2380,etcd-1=https://etcd-1.etcd-discovery.%s.svc:2380,etcd-2=https://etcd-2.etcd-discovery.%s.svc:2380" % ((NAMESPACE,) * 3)
    check(e.get("ETCD_INITIAL_CLUSTER") == ic == ee.get("ETCD_INITIAL_CLUSTER"),
          "ETCD_INITIAL_CLUSTER is the full 3-member list, the same for reset-member and etcd",
          "%s / %s" % (e.get("ETCD_INITIAL_CLUSTER"), ee.get("ETCD_INITIAL_CLUSTER")))
    peer = "https://etcd-0.etcd-discovery.%s.svc:2380" % NAMESPACE
    check(e.get("ETCD_INITIAL_ADVERTISE_PEER_URLS") == peer == ee.get("ETCD_INITIAL_ADVERTISE_PEER_URLS"),
          "peer URL https://$(ETCD_NAME).etcd-discovery.$(NAMESPACE).svc:2380 in both",
          "%s / %s" % (e.get("ETCD_INITIAL_ADVERTISE_PEER_URLS"), ee.get("ETCD_INITIAL_ADVERTISE_PEER_URLS")))
    check(e.get("ETCD_NAME") == POD == ee.get("ETCD_NAME"), "ETCD_NAME is the pod name")
    check(ee.get("ETCD_INITIAL_CLUSTER_TOKEN") == "etcd-cluster" and
          ee.get("ETCD_QUOTA_BACKEND_BYTES") == str(8 << 30),
          "etcd: token etcd-cluster, quota 8 GiB")
    check(e.get("ETCDCTL_CACERT") == "/etc/etcd/tls/etcd-ca/ca.crt"
          and e.get("ETCDCTL_CERT", "").startswith("/etc/etcd/tls/client/")
          and e.get("ETCDCTL_KEY", "").startswith("/etc/etcd/tls/client/")
          and ee.get("ETCD_CERT_FILE", "").startswith("/etc/etcd/tls/server/")
          and ee.get("ETCD_PEER_CERT_FILE", "").startswith("/etc/etcd/tls/peer/"),
          "TLS paths /etc/etcd/tls/{etcd-ca/ca.crt,server/*,peer/*,client/*}")

    # the state: reset-member writes it where etcd reads it, through one emptyDir
    rf = flags(rm.get("args", []))
    sf = rf.get("state-file", "/etc/etcd/clusterstate/state")
    ef = rf.get("env-file", "")
    ecmd = etcd.get("command", []) + etcd.get("args", [])
    check(sf == "/etc/etcd/clusterstate/state", "reset-member writes HyperShift's state file %s" % sf)
    prog = exec_program(ecmd)
    check(ef and ecmd[:2] == [rm["command"][0], "exec"] and "--env-file=" + ef in ecmd[:ecmd.index("--")]
          and prog == "/usr/local/bin/etcd" and ecmd[-1] == prog,
          "etcd starts as `reset-member exec --env-file=%s -- /usr/local/bin/etcd` (the official "
          "image's etcd)" % ef, str(ecmd))
    check(etcd.get("args") == [prog], "etcd's path is the container's args (one patch for OpenShift's /usr/bin/etcd)",
          str(etcd.get("args")))
    shells = [c["name"] for c in (rm, etcd, agent)
              if any(re.search(r"(^|/)(ba|da)?sh$", w) for w in c.get("command", []) + c.get("args", []))]
    check(not shells, "no container needs a shell (distroless etcd image)", str(shells))
    check(rm.get("image") == etcd.get("image") == agent.get("image"),
          "reset-member, etcd and etcd-agent run from one image (reset-member exec needs the binary "
          "in the etcd container)")
    vols = {v["name"]: v for v in pod["volumes"]}
    mr = {m["mountPath"]: m["name"] for m in rm["volumeMounts"]}
    me = {m["mountPath"]: m["name"] for m in etcd["volumeMounts"]}
    d = os.path.dirname(sf)
    check(os.path.dirname(ef) == d and mr.get(d) and mr.get(d) == me.get(d)
          and "emptyDir" in vols.get(mr[d], {}),
          "state dir %s is one emptyDir in both containers" % d, "%s %s" % (mr.get(d), me.get(d)))

    # probes: on etcd, HTTPS to the agent's port 9980, which is the agent's --tls-listen
    af = flags(agent.get("args", []))
    tls_port = int(af.get("tls-listen", ":0").rsplit(":", 1)[1])
    agent_ports = {p["name"]: p["containerPort"] for p in agent.get("ports", [])}
    for kind, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"),
                       ("startupProbe", "/readyz")):
        p = etcd.get(kind, {}).get("httpGet", {})
        port = p.get("port")
        num = port if isinstance(port, int) else agent_ports.get(port)
        check(p.get("scheme") == "HTTPS" and p.get("path") == path and num == 9980 == tls_port,
              "%s: HTTPS %s on 9980 (the agent's --tls-listen)" % (kind, path), str(p))
    sp = etcd["startupProbe"]
    budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    check(150 <= budget <= 240, "startupProbe budget %d s (~180 s)" % budget)
    check("agent-metrics" in agent_ports or "metrics" in agent_ports, "agent exposes a metrics port",
          str(agent_ports))
    check(port_of(etcd, "metrics") is not None, "etcd exposes its metrics port")

    # services, PDB, anti-affinity
    cl, disc = find(objs, "Service", "etcd-client"), find(objs, "Service", "etcd-discovery")
    cp = {p["port"]: p for p in (cl or {}).get("spec", {}).get("ports", [])}
    check(cl and cl["spec"].get("type", "ClusterIP") == "ClusterIP" and 2379 in cp and 2381 in cp
          and port_of(etcd, cp[2381]["targetPort"]) and port_of(etcd, cp[2379]["targetPort"]) == 2379,
          "Service etcd-client: ClusterIP 2379 and 2381 (metrics), target ports exist", str(cl))
    check(disc and disc["spec"].get("clusterIP") == "None"
          and disc["spec"].get("publishNotReadyAddresses") is True
          and 2380 in [p["port"] for p in disc["spec"]["ports"]],
          "Service etcd-discovery: headless, publishNotReadyAddresses, peer 2380")
    pdb = find(objs, "PodDisruptionBudget", "etcd")
    check(pdb and pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable 1")
    sel = s["selector"]["matchLabels"]
    for o in (cl, disc):
        check(o and o["spec"]["selector"] == sel, "%s selects the StatefulSet's pods" % o["metadata"]["name"])
    check(pdb and pdb["spec"]["selector"]["matchLabels"] == sel, "PDB selects the StatefulSet's pods")
    aa = pod.get("affinity", {}).get("podAntiAffinity", {})
    topo = [t["topologyKey"] for t in aa.get("requiredDuringSchedulingIgnoredDuringExecution", [])]
    topo_pref = [t["podAffinityTerm"]["topologyKey"]
                 for t in aa.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    check("kubernetes.io/hostname" in topo + topo_pref and "topology.kubernetes.io/zone" in topo_pref,
          "pod anti-affinity: hostname, zone preferred", str(aa))

    # security
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
          "pod runs as non-root (uid %s)" % psc.get("runAsUser"))
    for c in (rm, etcd, agent):
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and sc.get("capabilities", {}).get("drop") == ["ALL"] and sc.get("runAsNonRoot") is True
              and not sc.get("privileged") and not sc.get("capabilities", {}).get("add"),
              "%s: read-only root, no privilege escalation, drop ALL, non-root" % c["name"], str(sc))
    asc = agent["securityContext"].get("seccompProfile", {})
    check(asc.get("type") == "Localhost" and asc.get("localhostProfile") == "etcd-recovery/etcd-agent.json",
          "etcd-agent: seccomp Localhost etcd-recovery/etcd-agent.json", str(asc))
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "the other containers: seccomp RuntimeDefault")
    check(pod.get("automountServiceAccountToken") is False, "no service account token mounted")

    # the seccomp profile: RuntimeDefault-like plus io_uring
    prof = json.load(open(seccomp_path))
    allowed = set()
    for r in prof["syscalls"]:
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args"):
            allowed |= set(r["names"])
    check(prof["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"),
          "seccomp: unlisted syscalls are refused (%s)" % prof["defaultAction"])
    check({"io_uring_setup", "io_uring_enter", "io_uring_register"} <= allowed,
          "seccomp: io_uring_setup, io_uring_enter, io_uring_register allowed")
    dangerous = {"mount", "umount2", "ptrace", "bpf", "kexec_load", "init_module", "finit_module",
                 "unshare", "setns", "pivot_root", "keyctl", "perf_event_open", "reboot",
                 "process_vm_readv", "open_by_handle_at", "userfaultfd", "clock_settime", "clone3"}
    check(not (allowed & dangerous), "seccomp: no mount/ptrace/bpf/module/namespace/kexec calls",
          str(sorted(allowed & dangerous)))
    table = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
    if os.path.exists(table):
        known = set(re.findall(r"#define __NR_(\w+)\s", open(table).read()))
        check(allowed <= known, "seccomp: every allowed name is a real syscall",
              str(sorted(allowed - known)))
    # what the agent really calls is checked against this profile in `run` (strace)
    finish()


# ---- run --------------------------------------------------------------------------------------
CERTS = {  # secret/configMap key -> the test cluster's file
    ("etcd-ca", "ca.crt"): "ca.crt",
    ("etcd-client-tls", "tls.crt"): "client.crt", ("etcd-client-tls", "tls.key"): "client.key",
    ("etcd-server-tls", "tls.crt"): "node.crt", ("etcd-server-tls", "tls.key"): "node.key",
    ("etcd-peer-tls", "tls.crt"): "node.crt", ("etcd-peer-tls", "tls.key"): "node.key",
}


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def materialize(pod, c, root, cluster_dir):
    """Create the container's mounts under root with the test certificates where the
    manifest's secrets put them. Returns the list of mount paths."""
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = []
    for m in c.get("volumeMounts", []):
        d = root + m["mountPath"]
        os.makedirs(d, exist_ok=True)
        mounts.append(m["mountPath"])
        v = vols.get(m["name"])
        if v is None:  # the volumeClaimTemplate
            continue
        src = v.get("secret", {}).get("secretName") or v.get("configMap", {}).get("name")
        for it in (v.get("secret") or v.get("configMap") or {}).get("items", []):
            f = CERTS.get((src, it["key"]))
            if f:
                shutil.copy(os.path.join(cluster_dir, f), os.path.join(d, it["path"]))
    return mounts


def rewrite(value, mounts, root, urls, where, problems):
    """Paths under a mount -> under root; the pods' DNS names -> the test cluster's URLs."""
    for k, v in urls.items():
        value = value.replace(k, v)
    if ".svc" in value or "localhost:2379" in value:
        problems.append("%s: unmapped address in %r" % (where, value))
    if value.startswith("/"):
        if not any(value == m or value.startswith(m.rstrip("/") + "/") for m in mounts):
            problems.append("%s: path %s is on no volume mount" % (where, value))
        else:
            value = root + value
    return value


def test_urls(cluster_dir):
    urls = {}
    for i in range(3):
        mdir = os.path.join(cluster_dir, "members", str(i))
        cp = open(os.path.join(mdir, "client_port")).read().strip()
        pp = open(os.path.join(mdir, "peer_port")).read().strip()
        host = "https://etcd-%d.etcd-discovery.%s.svc" % (i, NAMESPACE)
        urls[host + ":2380"] = "https://127.0.0.1:" + pp
        urls[host + ":2379"] = "https://127.0.0.1:" + cp
    urls["https://localhost:2379"] = urls["https://etcd-0.etcd-discovery.%s.svc:2379" % NAMESPACE]
    return urls


def prepare(pod, c, root, cluster_dir, extra_urls=None):
    mounts = materialize(pod, c, root, cluster_dir)
    urls = test_urls(cluster_dir)
    urls.update(extra_urls or {})
    problems = []
    env = {"PATH": "/usr/bin:/bin"}
    for k, v in env_of(c).items():
        if k == "ETCD_NAME" or k == "NAMESPACE":
            env[k] = v
            continue
        parts = [rewrite(p, mounts, root, urls, "%s env %s" % (c["name"], k), problems)
                 for p in v.split(",")] if "://" in v else \
            [rewrite(v, mounts, root, urls, "%s env %s" % (c["name"], k), problems)]
        env[k] = ",".join(parts)
    args = []
    for a in c.get("args", []):
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            v = ",".join(rewrite(p, mounts, root, urls, "%s arg %s" % (c["name"], k), problems)
                         for p in v.split(",")) if "://" in v else \
                rewrite(v, mounts, root, urls, "%s arg %s" % (c["name"], k), problems)
            args.append(k + "=" + v)
        else:
            args.append(a)
    return env, args, problems


def binary(build, c):
    cmd = c.get("command", [])
    if not check(len(cmd) == 1 and cmd[0].startswith("/usr/bin/"),
                 "%s: command is one binary in /usr/bin (%s)" % (c["name"], cmd)):
        return None
    b = os.path.join(build, os.path.basename(cmd[0]))
    if not check(os.access(b, os.X_OK), "%s is built (%s)" % (os.path.basename(b), b)):
        return None
    return b


def get(url, timeout=5):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # as the kubelet does for HTTPS probes
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # connection refused while starting, timeouts
        return None, str(e).encode()


def etcd_health(client_url, cluster_dir, timeout=5):
    ctx = ssl.create_default_context(cafile=os.path.join(cluster_dir, "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(cluster_dir, "client.crt"), os.path.join(cluster_dir, "client.key"))
    try:
        with urllib.request.urlopen(client_url + "/health", timeout=timeout, context=ctx) as r:
            return json.loads(r.read()).get("health")
    except Exception:
        return None


def run_etcd_container(pod, rm, etcd, build, cluster_dir, tmp):
    cmd = etcd.get("command", []) + etcd.get("args", [])
    prog = exec_program(cmd)
    ef = flags(rm.get("args", [])).get("env-file")
    real_etcd = shutil.which("etcd")
    if not check(cmd[:2] == ["/usr/bin/reset-member", "exec"] and prog and ef and real_etcd,
                 "etcd container: reset-member exec, an env file and an etcd to run",
                 "%s, env file %s, etcd %s" % (cmd, ef, real_etcd)):
        return
    b = os.path.join(build, "reset-member")
    root = os.path.join(tmp, "etcd")
    client, peer, metrics = free_ports(3)
    me = "https://etcd-0.etcd-discovery.%s.svc" % NAMESPACE
    env, _, problems = prepare(pod, etcd, root, cluster_dir,
                               {me + ":2380": "https://127.0.0.1:%d" % peer,
                                me + ":2379": "https://127.0.0.1:%d" % client})
    for k, v in list(env.items()):
        env[k] = (v.replace("0.0.0.0:2379", "127.0.0.1:%d" % client)
                  .replace("0.0.0.0:2380", "127.0.0.1:%d" % peer)
                  .replace("0.0.0.0:2382", "127.0.0.1:%d" % metrics))
    check(not problems and "0.0.0.0" not in "".join(env.values()),
          "etcd: every path is on a mount, every address mapped", "; ".join(problems))
    # What the pod env alone would do must not work, so that only the env file can make etcd
    # healthy: the manifest's 3-member ETCD_INITIAL_CLUSTER (two of them another cluster's) and
    # a stale state.
    env["ETCD_INITIAL_CLUSTER_STATE"] = "existing"
    mine = "etcd-0=https://127.0.0.1:%d" % peer
    check(env.get("ETCD_INITIAL_CLUSTER", "").count("=https://") == 3 and mine in env["ETCD_INITIAL_CLUSTER"],
          "the pod env's ETCD_INITIAL_CLUSTER is the 3-member list (mapped)", env.get("ETCD_INITIAL_CLUSTER"))
    argv = [b if cmd[0] == "/usr/bin/reset-member" else cmd[0]] + \
        [("--env-file=" + root + ef) if a == "--env-file=" + ef else a for a in cmd[1:]]
    argv[argv.index("--") + 1] = real_etcd
    envfile = root + ef
    os.makedirs(os.path.dirname(envfile), exist_ok=True)
    client_url = "https://127.0.0.1:%d" % client

    # no env file, or one with a foreign line: exit 1, etcd never starts
    for name, content in (("no env file", None),
                          ("an env file with another variable",
                           "ETCD_INITIAL_CLUSTER_STATE=new\nETCD_DATA_DIR=/tmp/elsewhere\n"),
                          ("an empty env file", "")):
        if os.path.exists(envfile):
            os.unlink(envfile)
        if content is not None:
            with open(envfile, "w") as f:
                f.write(content)
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=WAIT)
        check(p.returncode == 1 and "not starting" in p.stderr
              and not os.path.exists(root + "/var/lib/data"),
              "etcd container with %s: exit 1, etcd not started" % name,
              "rc %d, stderr %s" % (p.returncode, p.stderr[-300:]))

    with open(envfile, "w") as f:  # act.c's format, as reset-member's bootstrap writes it
        f.write("ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=%s\n" % mine)
    log = open(os.path.join(tmp, "etcd-container.log"), "w+")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, health = time.time() + WAIT, None
        while time.time() < deadline and proc.poll() is None:
            health = etcd_health(client_url, cluster_dir)
            if health == "true":
                break
            time.sleep(0.5)
        log.seek(0)
        text = log.read()
        check(health == "true", "the etcd container's command starts etcd 3.4: healthy on %s" % client_url,
              "health %s, rc %s, log %s" % (health, proc.poll(), text[-600:]))
        try:
            exe = os.path.realpath("/proc/%d/exe" % proc.pid)
        except OSError:
            exe = None
        check(exe == os.path.realpath(real_etcd),
              "reset-member exec became etcd (same pid, no wrapper process left)", str(exe))
        first = text.splitlines()[0] if text else ""
        try:
            line = json.loads(first)
        except ValueError:
            line = {}
        check(line.get("msg") == "exec" and line.get("state") == "new" and line.get("initial_cluster") == mine
              and line.get("program") == real_etcd,
              "reset-member exec logs one JSON line: state new, the env file's initial cluster",
              first[:300])
        p = subprocess.run(["etcdctl", "--endpoints", client_url, "--cacert", os.path.join(cluster_dir, "ca.crt"),
                            "--cert", os.path.join(cluster_dir, "client.crt"),
                            "--key", os.path.join(cluster_dir, "client.key"), "member", "list", "-w", "json"],
                           capture_output=True, text=True, timeout=WAIT, env={**os.environ, "ETCDCTL_API": "3"})
        try:
            ms = json.loads(p.stdout)["members"]
        except (ValueError, KeyError):
            ms = []
        check(len(ms) == 1 and ms[0].get("name") == "etcd-0"
              and ms[0].get("peerURLs") == ["https://127.0.0.1:%d" % peer],
              "etcd bootstrapped the env file's one-member cluster (not the pod env's three)",
              p.stdout[-300:] + p.stderr[-200:])
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        # etcd cleans up, then re-raises SIGTERM (osutil.HandleInterrupts)
        check(rc in (0, -signal.SIGTERM), "etcd (started by reset-member exec) stops on SIGTERM",
              "rc %s" % rc)


def cmd_run(base_path, build, seccomp=None):
    cluster_dir = os.environ["CLUSTER_DIR"]
    objs = load(base_path)
    pod = find(objs, "StatefulSet", "etcd")["spec"]["template"]["spec"]
    rm, etcd, agent = container(pod, "reset-member"), container(pod, "etcd"), container(pod, "etcd-agent")
    tmp = tempfile.mkdtemp(prefix="manifests-run.")
    try:
        # reset-member: the manifest's args and env, plus --dry-run (a MemberList, no writes)
        b = binary(build, rm)
        if b:
            root = os.path.join(tmp, "rm")
            env, args, problems = prepare(pod, rm, root, cluster_dir)
            check(not problems, "reset-member: every path is on a mount, every address mapped",
                  "; ".join(problems))
            p = subprocess.run([b] + args + ["--dry-run"], env=env, capture_output=True, text=True,
                               timeout=WAIT)
            try:
                out = json.loads(p.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                out = {}
            check(p.returncode == 0 and out.get("action"),
                  "reset-member --dry-run with the manifest's args+env: action %s" % out.get("action"),
                  "rc %d, stdout %r, stderr %s" % (p.returncode, p.stdout, p.stderr[-400:]))
            m = re.search(r'"reachable":(true|false)', p.stderr)
            check(m and m.group(1) == "true", "reset-member reached the cluster with the manifest's TLS files",
                  p.stderr[-300:])
            rf = flags(rm.get("args", []))
            written = [f for f in (rf.get("state-file"), rf.get("env-file")) if f and os.path.exists(root + f)]
            check(not written, "reset-member --dry-run wrote neither state nor env file", str(written))

        # the etcd container's exact command, with reset-member and etcd mapped to the real
        # binaries here (etcd 3.4), its env and mounts under a temp root, and its addresses on
        # free ports: etcd starts with the env file's state and initial cluster
        run_etcd_container(pod, rm, etcd, build, cluster_dir, tmp)

        # etcd: every ETCD_* variable is a flag etcd knows
        if shutil.which("etcd"):
            helptext = subprocess.run(["etcd", "--help"], capture_output=True, text=True).stdout
            helptext += subprocess.run(["etcd", "--help"], capture_output=True, text=True).stderr
            known = set(re.findall(r"--([a-z0-9-]+)", helptext))
            names = [k for k in env_of(etcd) if k.startswith("ETCD_")] + ["ETCD_INITIAL_CLUSTER_STATE"]
            bad = [k for k in names if k[5:].lower().replace("_", "-") not in known]
            check(not bad, "etcd: all %d ETCD_* variables are etcd flags (etcd --help)" % len(names),
                  "unknown to etcd: %s" % bad)

        # etcd-agent: the manifest's args and env on free ports; the etcd container's probes
        b = binary(build, agent)
        if b:
            root = os.path.join(tmp, "agent")
            af = flags(agent.get("args", []))
            tls_port_m = int(af["tls-listen"].rsplit(":", 1)[1])
            plain_port_m = int(af["listen"].rsplit(":", 1)[1]) if af.get("listen") else None
            tls_port, plain_port = free_ports(2)
            env, args, problems = prepare(pod, agent, root, cluster_dir)
            args = [a.replace("0.0.0.0:%d" % tls_port_m, "127.0.0.1:%d" % tls_port)
                    .replace("0.0.0.0:%d" % (plain_port_m or 0), "127.0.0.1:%d" % plain_port)
                    for a in args]
            check(not problems, "etcd-agent: every path is on a mount, every address mapped",
                  "; ".join(problems))
            log = open(os.path.join(tmp, "agent.log"), "w+")
            trace = os.path.join(tmp, "strace.out")
            pre = ["strace", "-f", "-qq", "-o", trace] if shutil.which("strace") else []
            proc = subprocess.Popen(pre + [b] + args, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                agent_ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
                port_map = {tls_port_m: tls_port, plain_port_m: plain_port}
                for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                    h = etcd[kind]["httpGet"]
                    port = h["port"] if isinstance(h["port"], int) else agent_ports[h["port"]]
                    url = "%s://127.0.0.1:%d%s" % (h["scheme"].lower(), port_map.get(port, 0), h["path"])
                    deadline, code = time.time() + WAIT, None
                    while time.time() < deadline and proc.poll() is None:
                        code, _ = get(url)
                        if code == 200:
                            break
                        time.sleep(0.5)
                    log.seek(0)
                    check(code == 200, "etcd's %s %s %s answers 200 from the agent" % (kind, h["scheme"], h["path"]),
                          "code %s, agent rc %s, log %s" % (code, proc.poll(), log.read()[-400:]))
                lp = agent["livenessProbe"].get("tcpSocket", {}).get("port")
                lpn = lp if isinstance(lp, int) else agent_ports.get(lp)
                with socket.create_connection(("127.0.0.1", port_map.get(lpn, 0)), timeout=5) as _:
                    ok("etcd-agent's own liveness probe (tcp %s) connects" % lp)
                if af.get("tls-client-ca"):
                    # mTLS variant: no certificate, no connection; etcd's CA-signed client cert
                    # gets the snapshot routes (HEAD: no etcd snapshot is streamed)
                    code, body = get("https://127.0.0.1:%d/livez" % tls_port)
                    check(code is None, "agent --tls-client-ca: a client without a certificate is refused",
                          "code %s" % code)
                    ctx = ssl.create_default_context(cafile=os.path.join(cluster_dir, "ca.crt"))
                    ctx.load_cert_chain(os.path.join(cluster_dir, "client.crt"),
                                        os.path.join(cluster_dir, "client.key"))
                    req = urllib.request.Request("https://127.0.0.1:%d/snapshot" % tls_port, method="HEAD")
                    try:
                        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                            code = r.status
                    except urllib.error.HTTPError as e:
                        code = e.code
                    except Exception as e:
                        code = str(e)
                    check(code == 200, "agent --tls-client-ca: HEAD /snapshot with a client certificate: 200",
                          "got %s" % code)
                else:
                    req = urllib.request.Request("https://127.0.0.1:%d/snapshot" % tls_port, method="HEAD")
                    ctx = ssl.create_default_context()
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                    try:
                        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                            code = r.status
                    except urllib.error.HTTPError as e:
                        code = e.code
                    except Exception as e:
                        code = str(e)
                    check(isinstance(code, int) and code in (401, 403),
                          "base: HEAD /snapshot on 9980 without a client certificate is refused (%s)" % code,
                          "got %s" % code)
                mp = agent_ports.get("agent-metrics")
                code, body = get("http://127.0.0.1:%d/metrics" % port_map.get(mp, 0))
                check(code == 200 and b"# TYPE" in body, "agent-metrics port serves Prometheus /metrics",
                      "code %s" % code)
            except OSError as e:
                fail("etcd-agent", str(e))
            finally:
                target = proc.pid
                if pre:  # signal the agent, not strace (which exits with the agent's status)
                    try:
                        kids = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
                        target = int(kids[0]) if kids else proc.pid
                    except OSError:
                        pass
                os.kill(target, signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
                check(rc == 0, "etcd-agent with the manifest's flags exits 0 on SIGTERM", "rc %s" % rc)
                if pre and seccomp:
                    used = set(re.findall(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]",
                                          open(trace).read(), re.M)) - {"exit", "resumed", "execve"}
                    prof = json.load(open(seccomp))
                    allowed = {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
                               for n in r["names"]}
                    denied_ok = {n for r in prof["syscalls"] if r.get("errnoRet") == 38 for n in r["names"]}
                    check(used <= allowed | denied_ok,
                          "every syscall the agent made (%d kinds, io_uring %s) is allowed by the seccomp profile"
                          % (len(used), "used" if "io_uring_setup" in used else "not used"),
                          "refused: %s" % sorted(used - allowed - denied_ok))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


# ---- overlay ----------------------------------------------------------------------------------
def cmd_overlay(base_path, restore_path, build):
    """The restore overlay adds to reset-member only: envFrom the generated ConfigMap (the
    source: a store prefix) and the optional credentials Secret, ETCD_RESTORE_IDENTITY_FILE, and
    the optional identity Secret mounted read-only at that path; OnDelete; nothing else."""
    base, rest = load(base_path), load(restore_path)
    bs, rs = find(base, "StatefulSet", "etcd"), find(rest, "StatefulSet", "etcd")
    bpod, rpod = bs["spec"]["template"]["spec"], rs["spec"]["template"]["spec"]
    brm, rrm = container(bpod, "reset-member"), container(rpod, "reset-member")
    added = [e for e in rrm["env"] if e not in brm["env"]]
    ident = [e.get("value", "") for e in added if e["name"] == "ETCD_RESTORE_IDENTITY_FILE"]
    check([e["name"] for e in added] == ["ETCD_RESTORE_IDENTITY_FILE"] and ident[0].startswith("/"),
          "restore overlay adds ETCD_RESTORE_IDENTITY_FILE (%s) to reset-member's env" % ident,
          str(added))
    ident = ident[0] if ident else ""
    ef = rrm.get("envFrom", [])
    cmref = [e["configMapRef"]["name"] for e in ef if "configMapRef" in e]
    secref = [e["secretRef"] for e in ef if "secretRef" in e]
    check("envFrom" not in brm and len(ef) == 2 and len(cmref) == 1 and
          secref == [{"name": "etcd-backup-credentials", "optional": True}],
          "reset-member's envFrom: ConfigMap %s and Secret etcd-backup-credentials (optional)" % cmref,
          str(ef))
    cmo = cmref and find(rest, "ConfigMap", cmref[0])
    data = (cmo or {}).get("data", {})
    src = data.get("ETCD_RESTORE_FROM", "")
    check(src.startswith("s3://") and src.endswith("/"),
          "ETCD_RESTORE_FROM comes from ConfigMap %s: a store prefix (%s), the newest complete backup"
          % (cmref and cmref[0], src), str(data))
    check(all(k.startswith(("ETCD_RESTORE_", "AWS_")) and "SECRET" not in k and "KEY" not in k
              for k in data), "the ConfigMap holds restore and store settings, no secret (%s)"
          % " ".join(sorted(data)), str(sorted(data)))
    # the identity: a Secret volume mounted read-only at ETCD_RESTORE_IDENTITY_FILE's directory
    vols = {v["name"]: v for v in rpod["volumes"]}
    vm = [m for m in rrm.get("volumeMounts", []) if m not in brm.get("volumeMounts", [])]
    sec = vm and vols.get(vm[0]["name"], {}).get("secret", {})
    items = {it["key"]: it["path"] for it in (sec or {}).get("items", [])}
    check(len(vm) == 1 and vm[0].get("readOnly") is True and sec.get("secretName") == "etcd-backup-identity"
          and sec.get("optional") is True and sec.get("defaultMode") == 0o440
          and ident == vm[0]["mountPath"].rstrip("/") + "/" + items.get("identity", "?"),
          "Secret etcd-backup-identity (optional, 0440) is mounted read-only on reset-member at %s"
          % ident, "mounts %s, volume %s" % (vm, sec))
    others = [c["name"] for c in rpod.get("initContainers", []) + rpod["containers"]
              if c["name"] != "reset-member" and any(m["name"] == (vm and vm[0]["name"])
                                                     for m in c.get("volumeMounts", []))]
    check(not others, "no other container mounts the identity", str(others))
    bj = json.dumps(base)
    check("etcd-backup-identity" not in bj and "etcd-backup-credentials" not in bj,
          "the base references neither backup Secret (the identity lives only in the overlay)")
    check(rs["spec"].get("updateStrategy", {}).get("type") == "OnDelete",
          "restore overlay: updateStrategy OnDelete (all members restart together)")
    # everything else is the base: undo the additions and compare
    undo = json.loads(json.dumps(rs))
    upod = undo["spec"]["template"]["spec"]
    urm = container(upod, "reset-member")
    urm["env"] = [e for e in urm["env"] if e not in added]
    urm.pop("envFrom", None)
    urm["volumeMounts"] = [m for m in urm["volumeMounts"] if m not in vm]
    upod["volumes"] = [v for v in upod["volumes"] if not (vm and v["name"] == vm[0]["name"])]
    undo["spec"].pop("updateStrategy", None)
    if "updateStrategy" in bs["spec"]:
        undo["spec"]["updateStrategy"] = bs["spec"]["updateStrategy"]
    check(json.dumps(undo, sort_keys=True) == json.dumps(bs, sort_keys=True),
          "restore overlay changes nothing else in the StatefulSet")
    b = os.path.join(build, "reset-member")
    h = subprocess.run([b, "--help"], capture_output=True, text=True) if os.access(b, os.X_OK) else None
    if h is None or "restore-from" not in (h.stdout + h.stderr):
        print("SKIP restore overlay run: %s has no --restore-from yet" % b)
        finish()
    cluster_dir = os.environ["CLUSTER_DIR"]
    tmp = tempfile.mkdtemp(prefix="manifests-restore.")
    try:
        snap = os.path.join(tmp, "snapshot.db")
        subprocess.run(["tests/cluster.sh", "etcdctl", "0", "snapshot", "save", snap],
                       capture_output=True, timeout=WAIT)
        root = os.path.join(tmp, "rm")
        env, args, problems = prepare(rpod, rrm, root, cluster_dir)
        check(not problems, "the overlay's ETCD_RESTORE_IDENTITY_FILE is on a volume mount",
              "; ".join(problems))
        env.update(data)  # envFrom the ConfigMap
        p = subprocess.run([b] + args + ["--dry-run"], env=env, capture_output=True, text=True,
                           timeout=WAIT)
        check(p.returncode != 2 and '"action"' in p.stdout,
              "reset-member accepts the overlay's env (ETCD_RESTORE_FROM=%s, --dry-run rc %d)"
              % (src, p.returncode), "rc %d: %s %s" % (p.returncode, p.stdout, p.stderr[-300:]))
        env["ETCD_RESTORE_FROM"] = snap
        p = subprocess.run([b] + args + ["--dry-run"], env=env, capture_output=True, text=True,
                           timeout=WAIT)
        check(p.returncode != 2 and '"action"' in p.stdout,
              "reset-member accepts the overlay's env with a snapshot file (--dry-run rc %d)"
              % p.returncode, "rc %d: %s %s" % (p.returncode, p.stdout, p.stderr[-300:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish()


def cmd_tojson(rendered, out):
    objs = load(rendered)
    if not objs or not all(isinstance(o, dict) and o.get("apiVersion") and o.get("kind")
                           and o.get("metadata", {}).get("name") for o in objs):
        print("object without apiVersion/kind/name", file=sys.stderr)
        sys.exit(1)
    kinds = " ".join(sorted("%s/%s" % (o["kind"], o["metadata"]["name"]) for o in objs))
    # validate.js must reject this one (the validator is not a no-op)
    objs.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "negative-control"},
                 "spec": {"replicas": "3", "selector": {}, "serviceName": "x", "template": {}}})
    json.dump(objs, open(out, "w"))
    print(kinds)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "tojson" and len(sys.argv) == 4:
        cmd_tojson(*sys.argv[2:])
    elif cmd == "static" and len(sys.argv) == 5:
        cmd_static(*sys.argv[2:])
    elif cmd == "run" and len(sys.argv) in (4, 5):
        cmd_run(*sys.argv[2:])
    elif cmd == "overlay" and len(sys.argv) == 5:
        cmd_overlay(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
