#!/usr/bin/env bash
# Replicas over one bucket: `GET packages/{name}` and download throughput of
# one `fm registry serve --storage s3://…` replica, then of two replicas over
# the same bucket (two wrk processes, half the connections each, summed),
# in the same run, with moto (S3-compatible, Python) as the bucket, all on
# loopback.
#
#   apt-get install -y wrk; python3 -m pip install 'moto[server]'   # once
#   cargo build --release
#   bash benches/replicas.sh      # DURATION=10s CONNECTIONS=32 PACKAGES=20
#
# Not run by CI. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
FM=${FM:-$PWD/target/release/fm}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
PACKAGES=${PACKAGES:-20}
for tool in wrk python3 curl "$FM"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

s3_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
endpoint="http://127.0.0.1:$s3_port"
for _ in $(seq 1 100); do curl -sf "$endpoint/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf -X PUT "$endpoint/fm-bench" >/dev/null

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export FLOWMASON_REGISTRY_TOKEN=bench-token

replica() { # id; sets $url (not in a subshell: it records the pid)
    "$FM" --quiet registry serve --storage s3://fm-bench/reg --storage-endpoint "$endpoint" \
        --token "$FLOWMASON_REGISTRY_TOKEN" --replica-id "$1" --bind 127.0.0.1:0 >/dev/null 2>"$work/$1.log" &
    pids+=($!)
    for _ in $(seq 1 100); do grep -q 'http://' "$work/$1.log" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o 'http://[^ ]*' "$work/$1.log" | head -1)
}
replica a
a=$url
replica b
b=$url

# $PACKAGES packages, three versions each, published through replica a.
for i in $(seq 1 "$PACKAGES"); do
    for v in 1.0.0 1.1.0 2.0.0; do
        src="$work/src/pkg-$i-$v"
        mkdir -p "$src/components"
        printf '[package]\nname = "pkg-%s"\nversion = "%s"\ndescription = "benchmark package %s"\n\n[dependencies]\n' "$i" "$v" "$i" >"$src/fm.toml"
        head -c 20000 /dev/urandom | base64 >"$src/components/data.txt"
        "$FM" --quiet publish "$src" --registry "$a"
    done
done

name=pkg-$((PACKAGES / 2 + 1))
doc=/api/v1/registry/packages/$name
dl=/api/v1/registry/packages/$name/1.0.0/download
for u in "$a" "$b"; do curl -sf "$u$doc" >/dev/null; curl -sf "$u$dl" >/dev/null; done

rps() { # connections url
    wrk -t1 -c"$1" -d"$DURATION" "$2" | awk '/Requests\/sec/ {print $2}'
}
one() { rps "$CONNECTIONS" "$a$1"; }
two() {
    local half=$((CONNECTIONS / 2))
    rps "$half" "$a$1" >"$work/ra" &
    local p=$!
    rps "$half" "$b$1" >"$work/rb"
    wait "$p"
    awk '{s += $1} END {printf "%.2f", s}' "$work/ra" "$work/rb"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk -c$CONNECTIONS -d$DURATION; doc $(curl -s "$a$doc" | wc -c) bytes, archive $(curl -s "$a$dl" | wc -c) bytes"
doc1=$(one "$doc"); doc2=$(two "$doc")
dl1=$(one "$dl"); dl2=$(two "$dl")
echo
echo "| request | 1 replica (req/s) | 2 replicas (req/s) | 2 / 1 |"
echo "|---|---|---|---|"
for row in "GET packages/{name}|$doc1|$doc2" "GET …/download|$dl1|$dl2"; do
    IFS='|' read -r what r1 r2 <<<"$row"
    echo "| $what | $r1 | $r2 | $(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }') |"
done
