#!/usr/bin/env bash
# Replicas over one bucket: `GET packages/{name}` and download throughput of
# one `fm registry serve --storage s3://…` replica, then of two replicas over
# the same bucket (two wrk processes, half the connections each, summed),
# side by side in one run, repeated $ROUNDS times. Next to req/s it reports
# the CPU time each process spent per request served (utime + stime from
# /proc/PID/stat, before and after each load), so fm's own cost per request
# is visible whatever the bottleneck is, and the store's and wrk's too.
#
# The bucket is s3s-fs (the `s3s-fs` crate's S3 server over a folder; Rust,
# multi-threaded), so the store is not the bottleneck the way a
# single-threaded Python moto is. Install once, into target/ (0.14.1 is the
# newest that builds with rustc 1.95):
#
#   apt-get install -y wrk
#   cargo install s3s-fs@0.14.1 --features binary --locked --root target/tools
#   cargo build --release
#   bash benches/replicas.sh   # DURATION=10s CONNECTIONS=32 PACKAGES=20 ROUNDS=3
#
# Pinning (PIN=1, the default, on a machine with 2+ cores): replica a runs on
# CPU 0, replica b on CPU 1; s3s-fs and wrk are not pinned. With one replica
# the fm process gets one core; with two, two. The store and wrk share the
# same cores, so req/s says how the whole loopback setup scales, and the
# CPU/request columns say what each part costs.
#
# EXTRA="--storage-cache-ttl 1s" passes extra flags to both replicas.
# Not run by CI. Prints Markdown tables for BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
FM=${FM:-$PWD/target/release/fm}
S3S=${S3S:-$PWD/target/tools/bin/s3s-fs}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
PACKAGES=${PACKAGES:-20}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
EXTRA=${EXTRA:-}
for tool in wrk python3 curl taskset "$FM" "$S3S"; do
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

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export FLOWMASON_REGISTRY_TOKEN=bench-token

s3_port=$(free_port)
mkdir -p "$work/bucket/fm-bench"
"$S3S" --host 127.0.0.1 --port "$s3_port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/bucket" >"$work/s3s.log" 2>&1 &
s3_pid=$!
pids+=("$s3_pid")
endpoint="http://127.0.0.1:$s3_port"
for _ in $(seq 1 100); do curl -s -o /dev/null "$endpoint/" && break; sleep 0.1; done

replica() { # id cpu; sets $url and $pid (not in a subshell: it records the pid)
    local pin=()
    [ "$PIN" = 1 ] && pin=(taskset -c "$2")
    # shellcheck disable=SC2086
    "${pin[@]}" "$FM" --quiet registry serve --storage s3://fm-bench/reg --storage-endpoint "$endpoint" \
        --token "$FLOWMASON_REGISTRY_TOKEN" --replica-id "$1" --bind 127.0.0.1:0 $EXTRA >/dev/null 2>"$work/$1.log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do grep -q 'http://' "$work/$1.log" 2>/dev/null && break; sleep 0.1; done
    url=$(grep -o 'http://[^ ]*' "$work/$1.log" | head -1)
    [ -n "$url" ] || { cat "$work/$1.log" >&2; exit 1; }
}
replica a 0
a=$url
a_pid=$pid
replica b 1
b=$url
b_pid=$pid

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

ticks=$(getconf CLK_TCK)
cpu() { # pid -> utime+stime in ticks (all threads)
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
load() { # connections url out -> "requests req/s" in out
    wrk -t1 -c"$1" -d"$DURATION" "$2" >"$3.wrk"
    local n r
    n=$(awk '/requests in/ {print $1}' "$3.wrk")
    r=$(awk '/Requests\/sec/ {print $2}' "$3.wrk")
    echo "$n $r" >"$3"
}
us_per() { # ticks requests -> µs of CPU per request
    awk -v t="$1" -v n="$2" -v hz="$ticks" 'BEGIN { printf "%.0f", (n > 0 ? t / hz * 1e6 / n : 0) }'
}
# One measurement: $1 = path, $2 = 1 or 2 replicas. Prints
# "req/s fm-µs/req store-µs/req" (fm: both replicas' CPU over both's requests).
measure() {
    local path=$1 n=$2 a0 b0 s0 a1 b1 s1
    a0=$(cpu "$a_pid"); b0=$(cpu "$b_pid"); s0=$(cpu "$s3_pid")
    if [ "$n" = 1 ]; then
        load "$CONNECTIONS" "$a$path" "$work/ra"
        echo "0 0" >"$work/rb"
    else
        load $((CONNECTIONS / 2)) "$a$path" "$work/ra" &
        local p=$!
        load $((CONNECTIONS / 2)) "$b$path" "$work/rb"
        wait "$p"
    fi
    a1=$(cpu "$a_pid"); b1=$(cpu "$b_pid"); s1=$(cpu "$s3_pid")
    local reqs rps
    reqs=$(awk '{s += $1} END {print s}' "$work/ra" "$work/rb")
    rps=$(awk '{s += $2} END {printf "%.0f", s}' "$work/ra" "$work/rb")
    echo "$rps $(us_per $((a1 - a0 + b1 - b0)) "$reqs") $(us_per $((s1 - s0)) "$reqs")"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "store: $("$S3S" --version 2>/dev/null || echo s3s-fs); wrk -t1 -c$CONNECTIONS -d$DURATION (two replicas: two wrk of -c$((CONNECTIONS / 2))); pin=$PIN; extra flags: ${EXTRA:-none}"
echo "doc $(curl -s "$a$doc" | wc -c) bytes, archive $(curl -s "$a$dl" | wc -c) bytes"
echo
echo "| round | request | 1 replica req/s | 2 replicas req/s | 2 / 1 | fm CPU µs/req (1 / 2) | store CPU µs/req (1 / 2) |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for row in "GET packages/{name}|$doc" "GET …/download|$dl"; do
        IFS='|' read -r what path <<<"$row"
        read -r r1 f1 s1 <<<"$(measure "$path" 1)"
        read -r r2 f2 s2 <<<"$(measure "$path" 2)"
        ratio=$(awk -v a="$r2" -v b="$r1" 'BEGIN { printf "%.2f", a / b }')
        echo "| $round | $what | $r1 | $r2 | $ratio | $f1 / $f2 | $s1 / $s2 |"
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
