#!/usr/bin/env python3
"""Warm `fm sync` of two (or more) fm binaries, interleaved run by run.

    python3 benches/warm_ab.py WORK U RUNS MODE name=/path/to/fm ...

WORK/U/fm-project is a locked project and WORK/cache-U a cache holding
every archive. MODE `rm`: `rm -rf` of the install before each run;
`fresh`: a new `--dir` folder under WORK/freshes per run. The order
alternates each round, because on ext4 without a journal each run's
`rm -rf` makes the next runs' inode allocation slower for about 30 s
(`recently_deleted`): hyperfine, which runs every run of A before any of
B, charges B for A's deletions. Prints median wall and CPU (user+sys).
"""
import subprocess, sys, time, os, statistics, resource, tempfile
work, u, runs, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
bins = [a.split('=', 1) for a in sys.argv[5:]]
env = dict(os.environ, FM_HOME=f'{work}/home', FM_CACHE_DIR=f'{work}/cache-{u}')
proj = f'{work}/{u}/fm-project'
os.makedirs(f'{work}/freshes', exist_ok=True)
res = {n: ([], []) for n, _ in bins}
for r in range(runs):
    order = bins if r % 2 == 0 else bins[::-1]
    for n, b in order:
        extra = []
        if mode == 'rm':
            subprocess.run(['rm', '-rf', f'{proj}/.fm'], check=True)
        else:
            extra = ['--dir', tempfile.mkdtemp(dir=f'{work}/freshes')]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([b, '--quiet', 'sync', '--frozen', '--manifest-path', f'{proj}/fm.toml'] + extra, env=env, check=True, stderr=subprocess.DEVNULL)
        w = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res[n][0].append(w); res[n][1].append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
for n, (w, c) in res.items():
    print(f'{u} {mode} {n:8s} wall median {statistics.median(w)*1000:7.1f} ms (min {min(w)*1000:6.1f})  cpu median {statistics.median(c)*1000:7.1f} ms (min {min(c)*1000:6.1f})  n={len(w)}')
