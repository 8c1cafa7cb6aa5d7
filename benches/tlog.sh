#!/usr/bin/env bash
# What the transparency-log checks cost `fm lock` (SPEC §9): the 2,000-package
# graph served twice by `fm registry serve` behind the latency proxy — once
# as generated (no log), once with a log backfilled (`fm registry log init
# --backfill`) — and a cold `fm lock` (empty cache, no lock) against each.
#
#   cargo build --bin fm --example latency-proxy          # or --release, then FM=/PROXY=
#   bash benches/tlog.sh
#
# Figures (median of RUNS, default 3): cold lock without a log, with a log
# (proofs of every locked version), the difference in round trips of RTT_MS
# (default 50), and the log requests and rounds fm reports (--verbose); and a
# warm re-lock (`fm lock --upgrade`, every record proved before: no log
# request). Not run by CI.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
FM=${FM:-$TARGET/debug/fm}
PROXY=${PROXY:-$TARGET/debug/examples/latency-proxy}
PACKAGES=${PACKAGES:-2000}
RTT_MS=${RTT_MS:-50}
RUNS=${RUNS:-3}
GEN=${GEN:-$ROOT/../shared/bench/gen_universe.py}
for tool in "$FM" "$PROXY" python3 /usr/bin/time; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

# REUSE=DIR: a work folder of an earlier run (KEEP=1), graph and log kept
# (the backfill of 20,000 versions takes minutes).
if [ -n "${REUSE:-}" ]; then WORK=$REUSE; KEEP=1; else WORK=$(mktemp -d "${SCRATCH:-/tmp}/fm-tlog.XXXXXX"); fi
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

U=$WORK/universe
PLAIN=$U/fm-registry
LOGGED=$WORK/logged
if [ -z "${REUSE:-}" ]; then
    python3 "$GEN" --packages "$PACKAGES" --out "$U" >/dev/null
    cp -a "$PLAIN" "$LOGGED"
    "$FM" --quiet registry log init --storage "$LOGGED" --key "$WORK/log.key" --backfill
fi
export FM_HOME=$WORK/home

# serve NAME STORAGE [ARGS]: starts a server and a proxy in front of it;
# sets ADDR to the proxy's address. (Not in $(...): the servers would hold
# its pipe open.)
serve() {
    local name=$1 storage=$2
    shift 2
    "$FM" --quiet registry serve --storage "$storage" --bind 127.0.0.1:0 "$@" >/dev/null 2>"$WORK/$name.log" &
    pids+=($!)
    for _ in $(seq 1 600); do grep -q 'http://' "$WORK/$name.log" 2>/dev/null && break; sleep 0.1; done
    local server
    server=$(grep -o 'http://[^ ]*' "$WORK/$name.log" | head -1 | sed 's#http://##; s#/.*##')
    "$PROXY" --upstream "$server" --rtt-ms "$RTT_MS" >"$WORK/$name-proxy.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q 'listening' "$WORK/$name-proxy.log" 2>/dev/null && break; sleep 0.1; done
    ADDR=$(awk '/listening on/ {print $3}' "$WORK/$name-proxy.log")
}
serve plain "$PLAIN"
plain=$ADDR
serve logged "$LOGGED" --log-key "$WORK/log.key"
logged=$ADDR

for p in plain logged; do
    mkdir -p "$WORK/$p"
    addr=${!p}
    sed "s#^url = .*#url = \"http://$addr\"#" "$U/fm-project/fm.toml" >"$WORK/$p/fm.toml"
done

median() {
    local label=$1 prepare=$2 cmd=$3 i times=() t
    for ((i = 0; i < RUNS; i++)); do
        bash -c "$prepare"
        /usr/bin/time -f '%e' -o "$WORK/t" bash -c "$cmd" >/dev/null 2>"$WORK/err" ||
            { cat "$WORK/err" >&2; echo "failed: $cmd" >&2; exit 1; }
        read -r t <"$WORK/t"
        times+=("$t")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' >"$WORK/$label.median"
    printf '%-26s %7ss\n' "$label" "$(cat "$WORK/$label.median")" >&2
}

C=$WORK/cache
for p in plain logged; do
    median "$p-cold" "rm -rf $C $WORK/$p/fm.lock" "FM_CACHE_DIR=$C $FM lock --manifest-path $WORK/$p/fm.toml"
done
rm -rf "$C" "$WORK/logged/fm.lock"
FM_CACHE_DIR=$C "$FM" --verbose lock --manifest-path "$WORK/logged/fm.toml" 2>"$WORK/verbose.txt" >/dev/null
figures=$(grep -o 'Transparency log: .*' "$WORK/verbose.txt" || echo "Transparency log: (no line)")
median "logged-warm" "true" "FM_CACHE_DIR=$C $FM lock --upgrade --manifest-path $WORK/logged/fm.toml"
FM_CACHE_DIR=$C "$FM" --verbose lock --upgrade --manifest-path "$WORK/logged/fm.toml" 2>"$WORK/warm.txt" >/dev/null
warm=$(grep -o 'Transparency log: .*' "$WORK/warm.txt" || echo "Transparency log: (no line)")
locked=$(grep -c '^\[\[package\]\]' "$WORK/logged/fm.lock")
records=$(grep -c '^log-index' "$WORK/logged/fm.lock")

python3 - "$WORK" "$RTT_MS" "$locked" "$records" "$figures" "$warm" <<'PY'
import sys
work, rtt, locked, records, figures, warm = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
m = lambda k: float(open(f"{work}/{k}.median").read())
d = m("logged-cold") - m("plain-cold")
print(f"\n{locked} packages locked, {records} with a log-index, RTT {rtt} ms")
print("| figure | value |")
print("|---|---|")
print(f"| cold fm lock, no log | {m('plain-cold'):.2f} s |")
print(f"| cold fm lock, every version proved | {m('logged-cold'):.2f} s |")
print(f"| added | {d:+.2f} s = {d*1000/rtt:+.1f} RTT |")
print(f"| cold run, {figures.removeprefix('Transparency log: ')} | |")
print(f"| warm fm lock --upgrade | {m('logged-warm'):.2f} s ({warm.removeprefix('Transparency log: ')}) |")
PY
