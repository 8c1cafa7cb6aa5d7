#!/usr/bin/env bash
# benches/noop_sync.sh -- wall clock of a no-op `fm sync` of the
# 10,000-package benchmark universe (1,299 packages, 11,691 files installed),
# with the per-file change check (every installed file's size, mtime, ctime
# and inode compared with the state file). Results: BENCHMARKS.md, "No-op
# sync of the 10,000-package universe"; target: under 30 ms.
#
#   cargo build --release --bin fm
#   bash benches/noop_sync.sh
#
# Environment:
#   FM        the fm binary (default: target/release/fm, or $CARGO_TARGET_DIR/release/fm)
#   UNIVERSE  a folder made by gen_universe.py --packages 10000 (built there, ~25 min
#             on a busy 2-core machine, if it does not exist; default /tmp/fm-universe-10000)
#   GEN       gen_universe.py (default ../shared/bench/gen_universe.py)
#   RUNS      hyperfine runs per command (default 50), WARMUP (default 5)
#   PERF=1    also count instructions of one no-op sync with `perf stat` (less noisy
#             than wall clock on a loaded machine; compare builds with it)
# Needs hyperfine (apt-get install -y hyperfine). The project, cache and FM_HOME
# live in a scratch folder that is removed at the end (KEEP=1 keeps it).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
FM=${FM:-${CARGO_TARGET_DIR:-$HERE/target}/release/fm}
UNIVERSE=${UNIVERSE:-/tmp/fm-universe-10000}
GEN=${GEN:-$HERE/../shared/bench/gen_universe.py}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
[ -x "$FM" ] || { echo "no fm binary at $FM (cargo build --release --bin fm, or set FM)" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "hyperfine not found (apt-get install -y hyperfine)" >&2; exit 2; }
FM=$(cd "$(dirname "$FM")" && pwd)/$(basename "$FM")

if [ ! -f "$UNIVERSE/fm-project/fm.toml" ]; then
    echo "building the universe in $UNIVERSE (gen_universe.py --packages 10000)" >&2
    python3 "$GEN" --packages 10000 --out "$UNIVERSE" >&2
fi
UNIVERSE=$(cd "$UNIVERSE" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fm-noop-sync.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$WORK"' EXIT; fi
export FM_CACHE_DIR=$WORK/cache FM_HOME=$WORK/home NO_COLOR=1
PROJECT=$WORK/project
mkdir -p "$PROJECT"
# The same project with the registry's absolute path.
sed "s|^url = \"../fm-registry\"|url = \"$UNIVERSE/fm-registry\"|" "$UNIVERSE/fm-project/fm.toml" > "$PROJECT/fm.toml"
cd "$PROJECT"
"$FM" --quiet lock
"$FM" --quiet sync --frozen
packages=$(grep -c '^\[\[package\]\]' fm.lock)
files=$(find .fm/packages -type f | wc -l)
state=$(stat -c %s .fm/state.toml)
echo "installed: $packages packages, $files files; fm.lock $(stat -c %s fm.lock) bytes, state $state bytes" >&2
"$FM" sync --frozen 2>&1 | tail -1 >&2

hyperfine --warmup "$WARMUP" --runs "$RUNS" -N \
    --export-markdown "$WORK/noop.md" \
    -n "fm sync --frozen (no-op)" "$FM --quiet sync --frozen" \
    -n "fm sync (no-op)" "$FM --quiet sync"
cat "$WORK/noop.md"

if [ "${PERF:-0}" = 1 ]; then
    perf stat -e instructions,task-clock -r 20 "$FM" --quiet sync --frozen 2>&1 | grep -E "instructions|task-clock|elapsed" >&2
fi

# The check still works: an edited installed file is noticed and repaired.
# (sed, not head: head's early exit would fail the pipeline under pipefail,
# ending the script here without a word.)
victim=$(find .fm/packages -type f -name '*.py' | sort | sed -n 1p)
printf '# edited\n' >> "$victim"
out=$("$FM" sync --frozen 2>&1)
echo "$out" | grep -q "Reinstalled" || { echo "an edited file was not noticed: $out" >&2; exit 1; }
"$FM" --quiet verify
echo "edit of $victim noticed, repaired, verified" >&2
