#!/usr/bin/env bash
# Two fm binaries (two decision orders, say) on the same eight graphs:
# both benchmark graphs and six more from gen_universe.py with other seeds
# and shapes, so that an order is judged on graphs it was not tuned on.
#
#   FM_A=/tmp/fm-before FM_B=target/release/fm bash benches/decision_order.sh
#
# For each graph and binary: whether the lock is valid and how good it is
# (check_resolution.py: packages below their newest version, and below the
# highest their dependents allow), whether B's lock is byte-identical to
# A's, and the median wall-clock `fm lock` of RUNS (default 5) runs with an
# empty cache and no lock. Graphs are generated once into $WORK (default
# /tmp/fm-decision-order), with one small file per archive: only the
# documents matter to `fm lock`. The two benchmark graphs are read from
# U2K and U10K when set (as benches/network.sh made them), else generated.
# Not run by CI.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
FM_A=${FM_A:?set FM_A to the binary to compare against}
FM_B=${FM_B:-$ROOT/target/release/fm}
RUNS=${RUNS:-5}
WORK=${WORK:-/tmp/fm-decision-order}
GEN=${GEN:-$ROOT/../shared/bench/gen_universe.py}
CHECK=${CHECK:-$ROOT/../shared/bench/check_resolution.py}
mkdir -p "$WORK"

# name: gen_universe.py arguments (the benchmark graphs use its defaults).
GRAPHS=(
  "u2k:--seed 1 --packages 2000"
  "u10k:--seed 1 --packages 10000"
  "s2:--seed 2 --packages 10000"
  "s3:--seed 3 --packages 10000"
  "s4:--seed 4 --packages 5000 --max-deps 8"
  "s5:--seed 5 --packages 2000"
  "s6:--seed 6 --packages 10000 --roots 80"
  "s7:--seed 7 --packages 20000"
)

universe() { # name args -> prints the universe folder
  local name=$1 args=$2
  if [[ $name == u2k && -n ${U2K:-} ]]; then echo "$U2K"; return; fi
  if [[ $name == u10k && -n ${U10K:-} ]]; then echo "$U10K"; return; fi
  local u=$WORK/$name
  if [[ ! -f $u/fm-project/fm.toml ]]; then
    # shellcheck disable=SC2086
    python3 "$GEN" $args --files-per-package 1 --bytes-per-file 64 --out "$u" >&2
  fi
  echo "$u"
}

lock_with() { # fm universe out -> median ms; leaves the lock at out
  local fm=$1 u=$2 out=$3 w
  w=$(mktemp -d "$WORK/run.XXXXXX")
  mkdir -p "$w/P"
  ln -s "$u/fm-registry" "$w/fm-registry"
  cp "$u/fm-project/fm.toml" "$w/P/"
  local times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$w/C" "$w/P/fm.lock"
    local t0 t1
    t0=$(date +%s%N)
    FM_CACHE_DIR=$w/C "$fm" --quiet lock --manifest-path "$w/P/fm.toml" 2>/dev/null
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000)))
  done
  cp "$w/P/fm.lock" "$out"
  rm -rf "$w"
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

quality() { # universe lock
  python3 "$CHECK" "$1" "$2" | sed -E 's/^VALID: ([0-9]+) packages; ([0-9]+) below their newest version; ([0-9]+) below.*/valid, \1 packages, \2 not newest, \3 held down/'
}

printf '%-5s %9s %9s %6s  %-s\n' graph "A ms" "B ms" "B/A" "locks"
for g in "${GRAPHS[@]}"; do
  name=${g%%:*}
  u=$(universe "$name" "${g#*:}")
  ta=$(lock_with "$FM_A" "$u" "$WORK/$name.a.lock")
  tb=$(lock_with "$FM_B" "$u" "$WORK/$name.b.lock")
  if cmp -s "$WORK/$name.a.lock" "$WORK/$name.b.lock"; then
    same="identical ($(quality "$u" "$WORK/$name.b.lock"))"
  else
    same="A: $(quality "$u" "$WORK/$name.a.lock"); B: $(quality "$u" "$WORK/$name.b.lock")"
  fi
  printf '%-5s %9s %9s %6s  %s\n' "$name" "$ta" "$tb" "$(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.2f", b/a}')" "$same"
done
