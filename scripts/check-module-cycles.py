#!/usr/bin/env python3
"""Import cycles among fm's top-level modules (issue #14).

    python3 scripts/check-module-cycles.py [src]

Prints each module's dependencies (`crate::X` paths outside comments and
`#[cfg(test)]` code), then the strongly connected groups of more than one
module; exits 1 if there is any. Run by .ci/run.
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
mods = {}
for dp, dn, fn in os.walk(root):
    for f in fn:
        if not f.endswith('.rs'): continue
        p = os.path.join(dp, f); rel = os.path.relpath(p, root)
        top = rel.split(os.sep)[0].removesuffix('.rs')
        if top in ('lib', 'main'): continue
        src = open(p).read()
        src = re.sub(r'//[^\n]*', '', src)
        src = src.split('#[cfg(test)]')[0]
        deps = set(re.findall(r'crate::(\w+)', src))
        for grp in re.findall(r'crate::\{([^}]*)\}', src):
            deps |= set(re.findall(r'^\s*(\w+)', x)[0] for x in grp.split(',') if x.strip())
        mods.setdefault(top, set()).update(d for d in deps if d != top)
G = {m: {d for d in ds if d in mods} for m, ds in mods.items()}
# Tarjan SCC
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in G[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        out.append(comp)
sys.setrecursionlimit(10000)
for v in sorted(G):
    if v not in idx: sc(v)
for m in sorted(G): print(f"{m:10} -> {', '.join(sorted(G[m]))}")
cyc = [sorted(c) for c in out if len(c) > 1]
print("cycles:", cyc if cyc else "none")
sys.exit(1 if cyc else 0)
