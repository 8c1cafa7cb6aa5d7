#!/usr/bin/env bash
# `GET health` and `GET stats` latency from `fm registry serve` over a
# registry of $PACKAGES package documents (default 20,000), measured with
# curl on loopback. Run it with two binaries to compare:
#
#   FM=/path/to/old/fm bash benches/health.sh
#   FM=target/debug/fm bash benches/health.sh     # PACKAGES=20000 REQUESTS=50
#
# Only the documents are written (health and stats never read archives).
# Not run by CI. Prints one Markdown row per endpoint for BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
FM=${FM:-$PWD/target/release/fm}
PACKAGES=${PACKAGES:-20000}
REQUESTS=${REQUESTS:-50}
command -v curl >/dev/null || { echo "missing: curl" >&2; exit 1; }

work=$(mktemp -d)
fm_pid=""
cleanup() {
    [ -n "$fm_pid" ] && kill "$fm_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/st/index"
sum=672cf24b045fcd1be7fd95ca4cc675ada59906231f400708b2552bc30f630406
for i in $(seq 1 "$PACKAGES"); do
    n="pkg-$i"
    printf '{"name":"%s","version":"1.0.0","description":"bench","checksum":"%s","size_bytes":421,"components":["components/c.py"],"component_count":1,"tags":[],"category":"transformers","published_at":"2026-12-01T00:00:00Z","downloads":0,"latest_version":"1.0.0","versions":[{"version":"1.0.0","checksum":"%s","size_bytes":421,"dependencies":{},"yanked":false,"published_at":"2026-12-01T00:00:00Z"}]}\n' \
        "$n" "$sum" "$sum" >"$work/st/index/$n.json"
done

"$FM" --quiet registry serve --storage "$work/st" --bind 127.0.0.1:0 2>"$work/fm.log" &
fm_pid=$!
for _ in $(seq 1 600); do grep -q 'http://' "$work/fm.log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/fm.log" | head -1)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); fm: $FM"
for endpoint in health stats; do
    # The first request warms the document cache (the old server parses
    # every document once, then stats them on every request).
    curl -sf "$url/api/v1/registry/$endpoint" >/dev/null
    times=$(for _ in $(seq 1 "$REQUESTS"); do
        curl -s -o /dev/null -w '%{time_total}\n' "$url/api/v1/registry/$endpoint"
    done | sort -n)
    median=$(echo "$times" | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] * 1000}')
    p95=$(echo "$times" | awk '{a[NR]=$1} END {printf "%.2f", a[int(NR*0.95)] * 1000}')
    echo "| $endpoint | $PACKAGES | $median ms | $p95 ms |"
done
