#!/usr/bin/env python3
"""include_graph.py - the programs' module graphs stay one-way: no include cycle among the files
of agent/ or init/ (a module is a file stem; NAME_internal.h belongs to NAME), and common/ never
includes a header of agent/ or init/. (Inside common/, etcd.h's types are shared with proto, its
encoder, which etcd.c calls: one concern in two files, not checked.) Run by `make lint`."""
import glob
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
os.chdir(root)
bad = []
for d in ("agent", "init", "common"):
    cycles_checked = d != "common"
    graph = {}
    for f in glob.glob(f"{d}/*.[ch]"):
        mod = re.sub(r"_internal$", "", os.path.splitext(os.path.basename(f))[0])
        for inc in re.findall(r'^#include "([A-Za-z0-9_]+)\.h"', open(f).read(), re.M):
            if d == "common" and (os.path.exists(f"agent/{inc}.h") or os.path.exists(f"init/{inc}.h")) \
                    and not os.path.exists(f"common/{inc}.h"):
                bad.append(f"{f}: common/ includes {inc}.h of a program")
            dep = re.sub(r"_internal$", "", inc)
            if os.path.exists(f"{d}/{inc}.h") and dep != mod:
                graph.setdefault(mod, set()).add(dep)
    state = {}

    def visit(u, path):
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1 and cycles_checked:
                bad.append(f"{d}/: include cycle " + " -> ".join(path[path.index(v):] + [v]))
            elif not state.get(v):
                visit(v, path)
        path.pop()
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u, [])
for b in bad:
    print("lint:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
