#!/usr/bin/env bash
# Cold resolution over HTTP with injected latency: `fm lock` of a 60-package,
# 4-level graph against `fm registry serve` behind benches/latency_proxy.rs
# with a round trip of LATENCY_MS, compared with depth × latency (what
# perfect prefetching costs) and packages × latency (no prefetching). The
# most requests in flight at once is tests/it/prefetch.rs's FIGURES line.
#
#   cargo build --release --bin fm --example latency-proxy && bash benches/prefetch.sh    # LATENCY_MS=50
#
# Not run by CI.
set -euo pipefail

cd "$(dirname "$0")/.."
FM=${FM:-$PWD/target/release/fm}
PROXY=${PROXY:-$PWD/target/release/examples/latency-proxy}
LATENCY_MS=${LATENCY_MS:-50}
LEVELS=4
WIDTH=15
work=$(mktemp -d)
fm_pid=""
proxy_pid=""
cleanup() {
    [ -n "$fm_pid" ] && kill "$fm_pid" 2>/dev/null || true
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for level in $(seq 0 $((LEVELS - 1))); do
    for i in $(seq 0 $((WIDTH - 1))); do
        src="$work/src/p$level-$i"
        mkdir -p "$src/components"
        printf '[package]\nname = "p%s-%s"\nversion = "1.0.0"\n\n[dependencies]\n' "$level" "$i" >"$src/fm.toml"
        if [ "$level" -lt $((LEVELS - 1)) ]; then
            for d in 0 1 2; do
                printf 'p%s-%s = "^1"\n' $((level + 1)) $(((i + d) % WIDTH)) >>"$src/fm.toml"
            done
        fi
        printf 'def run(x):\n    return x\n' >"$src/components/c.py"
        "$FM" --quiet publish "$src" --registry "$work/st"
    done
done

# Not --quiet: the request log counts the requests.
"$FM" registry serve --storage "$work/st" --bind 127.0.0.1:0 2>"$work/fm.log" &
fm_pid=$!
for _ in $(seq 1 100); do grep -q 'http://' "$work/fm.log" 2>/dev/null && break; sleep 0.1; done
server=$(grep -o 'http://[^ ]*' "$work/fm.log" | head -1)
"$PROXY" --upstream "${server#http://}" --rtt-ms "$LATENCY_MS" >"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do grep -q 'listening' "$work/proxy.log" 2>/dev/null && break; sleep 0.1; done
url="http://$(awk '/listening on/ {print $3}' "$work/proxy.log")"

mkdir -p "$work/app"
{
    printf '[project]\nname = "app"\n\n[dependencies]\n'
    for i in $(seq 0 $((WIDTH - 1))); do printf 'p0-%s = "^1"\n' "$i"; done
    printf '\n[[registries]]\nname = "srv"\nurl = "%s"\n' "$url"
} >"$work/app/fm.toml"

start=$(date +%s%N)
if ! (cd "$work/app" && FM_CACHE_DIR="$work/cache" FM_HOME="$work/home" "$FM" --quiet lock); then
    echo "fm lock failed (not built in this tree?)" >&2
    exit 1
fi
end=$(date +%s%N)
wall=$(((end - start) / 1000000))
requests=$(grep -c ' GET /api/v1/registry/' "$work/fm.log" || true)
echo "| graph | latency | fm lock wall | depth x latency | packages x latency | requests |"
echo "|---|---|---|---|---|---|"
echo "| $((LEVELS * WIDTH)) packages, $LEVELS levels | ${LATENCY_MS} ms | ${wall} ms | $((LEVELS * LATENCY_MS)) ms | $((LEVELS * WIDTH * LATENCY_MS)) ms | $requests |"
