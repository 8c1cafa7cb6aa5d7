#!/usr/bin/env bash
# fm over a real network, and fm next to uv, in one run (ratios, not
# absolutes: the machine is shared).
#
#   cargo build --release --bin fm --example latency-proxy
#   bash benches/network.sh                  # the 2,000-package graph
#   PACKAGES=10000 bash benches/network.sh   # the 10,000-package universe
#
# Latency comes from benches/latency_proxy.rs on loopback between fm and
# `fm registry serve` (RTT_MS, default 50), never from sleeping in the
# server. Figures, each the median of RUNS (default 5) wall-clock runs:
#
#   http cold lock    fm lock, empty cache, no lock, through the proxy
#   http cold sync    fm sync --frozen, empty cache and install dir, proxy
#   dir cold sync     the same from the registry folder
#   dir lock / warm sync / cold sync, and uv's three on the same graph
#   warm sync into a fresh folder: a new, never-deleted folder per run
#     (`--dir` / `--target`), beside the one after `rm -rf` of the last
#     install: ext4 pays for allocating inodes next to freshly freed ones,
#     which is the filesystem's cost, not the tool's
#   uv warm sync with --link-mode copy (uv hard-links by default; fm copies)
#   peak RSS of fm lock and fm sync (and uv's), from /usr/bin/time
#
# With hyperfine on PATH (apt-get install -y hyperfine) the times are its
# medians (HYPERFINE= forces the /usr/bin/time loop); peak RSS always comes
# from /usr/bin/time. UNIVERSE=DIR reuses a graph gen_universe.py already
# wrote (it must match PACKAGES); otherwise it is generated.
#
# and the graph depth of the lock (longest chain from the project), to hold
# `http cold lock` against depth x RTT. Not run by CI.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
FM=${FM:-$ROOT/target/release/fm}
PROXY=${PROXY:-$ROOT/target/release/examples/latency-proxy}
PACKAGES=${PACKAGES:-2000}
RTT_MS=${RTT_MS:-50}
RUNS=${RUNS:-5}
GEN=${GEN:-$ROOT/../shared/bench/gen_universe.py}
for tool in "$FM" "$PROXY" python3 /usr/bin/time; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null || { echo "missing: $tool (cargo build --release --bin fm --example latency-proxy)" >&2; exit 1; }
done
if ! command -v uv >/dev/null; then python3 -m pip install --quiet uv; hash -r; fi
UV=$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || command -v uv)

WORK=$(mktemp -d "${SCRATCH:-/tmp}/fm-network.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The graph: gen_universe.py's defaults, --packages as given (its README).
if [ -n "${UNIVERSE:-}" ]; then
    U=$WORK/universe
    cp -a "$UNIVERSE" "$U"
    rm -rf "$U/fm-project/.fm" "$U/fm-project/fm.lock"
else
    U=$WORK/universe
    python3 "$GEN" --packages "$PACKAGES" --out "$U" >/dev/null
fi
HYPERFINE=${HYPERFINE-$(command -v hyperfine || true)}

# The server, and the proxy in front of it.
"$FM" --quiet registry serve --storage "$U/fm-registry" --bind 127.0.0.1:0 2>"$WORK/serve.log" &
pids+=($!)
for _ in $(seq 1 200); do grep -q 'http://' "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
server=$(grep -o 'http://[^ ]*' "$WORK/serve.log" | head -1 | sed 's#http://##; s#/.*##')
"$PROXY" --upstream "$server" --rtt-ms "$RTT_MS" >"$WORK/proxy.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q 'listening' "$WORK/proxy.log" 2>/dev/null && break; sleep 0.1; done
proxy=$(awk '/listening on/ {print $3}' "$WORK/proxy.log")

# Two projects over one graph: the folder one gen_universe.py wrote, and a
# copy naming the registry by its URL through the proxy.
DIRP=$U/fm-project
HTTPP=$WORK/http-project
mkdir -p "$HTTPP"
sed "s#^url = .*#url = \"http://$proxy\"#" "$DIRP/fm.toml" >"$HTTPP/fm.toml"
export FM_HOME=$WORK/home

# median LABEL PREPARE COMMAND: median wall seconds of RUNS runs, and peak RSS.
results=$WORK/results.tsv
: >"$results"
median() {
    local label=$1 prepare=$2 cmd=$3 i times=() rss=0 r m n=$RUNS
    [ -n "$HYPERFINE" ] && n=1
    for ((i = 0; i < n; i++)); do
        bash -c "$prepare"
        /usr/bin/time -f '%e %M' -o "$WORK/t" bash -c "$cmd" >/dev/null 2>"$WORK/err" ||
            { cat "$WORK/err" >&2; echo "failed: $cmd" >&2; exit 1; }
        read -r t r <"$WORK/t"
        times+=("$t")
        [ "$r" -gt "$rss" ] && rss=$r
    done
    if [ -n "$HYPERFINE" ]; then
        "$HYPERFINE" --style none --runs "$RUNS" --prepare "$prepare" --export-json "$WORK/h.json" "$cmd" >/dev/null 2>"$WORK/err" ||
            { cat "$WORK/err" >&2; echo "failed: $cmd" >&2; exit 1; }
        m=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["results"][0]["median"], 4))' "$WORK/h.json")
    else
        m=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    fi
    printf '%s\t%s\t%s\n' "$label" "$m" "$((rss / 1024))" >>"$results"
    printf '%-28s %7ss  peak %5s MiB\n' "$label" "$m" "$((rss / 1024))" >&2
}

C=$WORK/cache
HC="rm -rf $C $HTTPP/.fm $HTTPP/fm.lock"
median "http cold lock" "$HC" "FM_CACHE_DIR=$C $FM lock --manifest-path $HTTPP/fm.toml"
FM_CACHE_DIR=$C "$FM" --quiet lock --manifest-path "$HTTPP/fm.toml"
median "http cold sync" "rm -rf $C $HTTPP/.fm" "FM_CACHE_DIR=$C $FM sync --frozen --manifest-path $HTTPP/fm.toml"
median "dir lock" "rm -rf $C $DIRP/fm.lock" "FM_CACHE_DIR=$C $FM lock --manifest-path $DIRP/fm.toml"
FM_CACHE_DIR=$C "$FM" --quiet lock --manifest-path "$DIRP/fm.toml"
median "dir cold sync" "rm -rf $C $DIRP/.fm" "FM_CACHE_DIR=$C $FM sync --frozen --manifest-path $DIRP/fm.toml"
median "dir warm sync" "rm -rf $DIRP/.fm" "FM_CACHE_DIR=$C $FM sync --frozen --manifest-path $DIRP/fm.toml"
median "dir no-op sync" "true" "FM_CACHE_DIR=$C $FM sync --frozen --manifest-path $DIRP/fm.toml"
mkdir -p "$WORK/fresh"
median "dir cold sync fresh" "true" "FM_CACHE_DIR=\$(mktemp -d $WORK/fresh/cache.XXXXXX) $FM sync --frozen --manifest-path $DIRP/fm.toml --dir \$(mktemp -d $WORK/fresh/fm.XXXXXX)"
median "dir warm sync fresh" "true" "FM_CACHE_DIR=$C $FM sync --frozen --manifest-path $DIRP/fm.toml --dir \$(mktemp -d $WORK/fresh/fm.XXXXXX)"

UC=$WORK/uv-cache OUT=$WORK/uv-out.txt T=$WORK/uv-target
COMPILE="$UV pip compile -q --no-index --find-links $U/wheels $U/requirements.in -o $OUT"
median "uv lock" "rm -rf $UC $OUT" "$COMPILE --cache-dir $UC"
$COMPILE --cache-dir "$UC"
cp "$OUT" "$WORK/resolved.txt"
SYNC="$UV pip sync -q --no-index --find-links $U/wheels --target $T $WORK/resolved.txt"
median "uv cold sync" "rm -rf $T $UC" "$SYNC --cache-dir $UC"
median "uv warm sync" "rm -rf $T" "$SYNC --cache-dir $UC"
median "uv cold sync fresh" "true" "$UV pip sync -q --no-index --find-links $U/wheels --target \$(mktemp -d $WORK/fresh/uv.XXXXXX) $WORK/resolved.txt --cache-dir \$(mktemp -d $WORK/fresh/uvc.XXXXXX)"
median "uv warm sync fresh" "true" "$UV pip sync -q --no-index --find-links $U/wheels --target \$(mktemp -d $WORK/fresh/uv.XXXXXX) $WORK/resolved.txt --cache-dir $UC"
median "uv warm sync copy" "rm -rf $T" "$SYNC --cache-dir $UC --link-mode copy"

# The graph's depth: the longest chain of locked dependencies from the root.
depth=$(python3 - "$DIRP/fm.lock" <<'PY'
import sys, tomllib, functools
lock = tomllib.load(open(sys.argv[1], "rb"))
deps = {p["name"]: [d.split()[0] for d in p.get("dependencies", [])] for p in lock["package"]}
roots = [d.split()[0] for d in lock["root"]["dependencies"]]
sys.setrecursionlimit(100000)
@functools.cache
def depth(n):
    return 1 + max((depth(d) for d in deps.get(n, []) if d in deps), default=0)
print(max(depth(r) for r in roots if r in deps))
PY
)
resolved=$(grep -c '^\[\[package\]\]' "$DIRP/fm.lock")

python3 - "$results" "$depth" "$RTT_MS" "$resolved" "$PACKAGES" <<'PY'
import sys
rows = {l.split("\t")[0]: (float(l.split("\t")[1]), int(l.split("\t")[2])) for l in open(sys.argv[1])}
depth, rtt, resolved, packages = int(sys.argv[2]), int(sys.argv[3]) / 1000, sys.argv[4], sys.argv[5]
t = lambda k: rows[k][0]
print(f"\n{packages}-package graph, {resolved} packages resolved, depth {depth}, RTT {rtt*1000:.0f} ms\n")
print("| figure | fm | reference | ratio | target |")
print("|---|---|---|---|---|")
print(f"| cold lock over HTTP | {t('http cold lock'):.2f} s | 1.2 x depth x RTT + dir lock = {1.2*depth*rtt + t('dir lock'):.2f} s | {t('http cold lock')/(1.2*depth*rtt + t('dir lock')):.2f} | <= 1 |")
print(f"| cold sync over HTTP | {t('http cold sync'):.2f} s | dir cold sync + 10 RTT = {t('dir cold sync') + 10*rtt:.2f} s | {t('http cold sync')/(t('dir cold sync') + 10*rtt):.2f} | <= 1 |")
print(f"| lock vs uv | {t('dir lock'):.3f} s | uv {t('uv lock'):.3f} s | {t('dir lock')/t('uv lock'):.2f} | <= 0.10 |")
print(f"| warm sync vs uv | {t('dir warm sync'):.3f} s | uv {t('uv warm sync'):.3f} s | {t('dir warm sync')/t('uv warm sync'):.2f} | <= 0.15 |")
print(f"| cold sync vs uv | {t('dir cold sync'):.3f} s | uv {t('uv cold sync'):.3f} s | {t('dir cold sync')/t('uv cold sync'):.2f} | <= 0.30 |")
print(f"| cold sync into fresh folders vs uv | {t('dir cold sync fresh'):.3f} s | uv {t('uv cold sync fresh'):.3f} s | {t('dir cold sync fresh')/t('uv cold sync fresh'):.2f} | <= 0.30 |")
print(f"| warm sync into a fresh folder vs uv | {t('dir warm sync fresh'):.3f} s | uv {t('uv warm sync fresh'):.3f} s | {t('dir warm sync fresh')/t('uv warm sync fresh'):.2f} | <= 0.15 |")
print(f"| warm sync vs uv --link-mode copy | {t('dir warm sync'):.3f} s | uv {t('uv warm sync copy'):.3f} s | {t('dir warm sync')/t('uv warm sync copy'):.2f} | |")
print(f"| no-op sync | {t('dir no-op sync')*1000:.0f} ms | | | |")
print(f"| peak RSS lock | {rows['dir lock'][1]} MiB | uv {rows['uv lock'][1]} MiB | {rows['dir lock'][1]/max(rows['uv lock'][1],1):.2f} | < 1 |")
print(f"| peak RSS cold sync | {rows['dir cold sync'][1]} MiB | uv {rows['uv cold sync'][1]} MiB | {rows['dir cold sync'][1]/max(rows['uv cold sync'][1],1):.2f} | |")
print(f"| peak RSS cold sync over HTTP | {rows['http cold sync'][1]} MiB | | | |")
PY
