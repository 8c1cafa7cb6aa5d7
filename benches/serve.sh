#!/usr/bin/env bash
# Registry server throughput: `GET packages/{name}` from `fm registry serve`
# (release build) next to nginx serving the same index/{name}.json files
# statically, in the same run, with wrk on loopback.
#
#   apt-get install -y wrk nginx     # once
#   cargo build --release
#   bash benches/serve.sh            # DURATION=10s CONNECTIONS=32 THREADS=2 PACKAGES=50
#
# Not run by CI. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."
FM=${FM:-$PWD/target/release/fm}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PACKAGES=${PACKAGES:-50}
for tool in wrk nginx "$FM"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

work=$(mktemp -d)
fm_pid=""
nginx_pid=""
cleanup() {
    [ -n "$fm_pid" ] && kill "$fm_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A registry of $PACKAGES packages, five versions each, with dependencies.
for i in $(seq 1 "$PACKAGES"); do
    for v in 1.0.0 1.1.0 1.2.0 2.0.0 2.1.0; do
        src="$work/src/pkg-$i-$v"
        mkdir -p "$src/components"
        printf '[package]\nname = "pkg-%s"\nversion = "%s"\ndescription = "benchmark package %s"\ntags = ["bench", "nlp"]\ncategory = "transformers"\n\n[dependencies]\n' "$i" "$v" "$i" >"$src/fm.toml"
        [ "$i" -gt 1 ] && printf 'pkg-%s = "^1"\n' $((i - 1)) >>"$src/fm.toml"
        printf 'def run(x):\n    return x\n' >"$src/components/c.py"
        "$FM" --quiet publish "$src" --registry "$work/st"
    done
done

"$FM" --quiet registry serve --storage "$work/st" --bind 127.0.0.1:0 2>"$work/fm.log" &
fm_pid=$!
for _ in $(seq 1 100); do grep -q 'http://' "$work/fm.log" 2>/dev/null && break; sleep 0.1; done
fm_url=$(grep -o 'http://[^ ]*' "$work/fm.log" | head -1)

port=$((20000 + RANDOM % 20000))
cat >"$work/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp;
    scgi_temp_path $work/tmp;
    server {
        listen 127.0.0.1:$port;
        etag on;
        location /api/v1/registry/packages/ {
            alias $work/st/index/;
            default_type application/json;
            try_files \$uri.json =404;
        }
    }
}
CONF
mkdir -p "$work/tmp"
# nginx workers run as another user.
chmod -R a+rX "$work"
nginx -c "$work/nginx.conf" &
nginx_pid=$!
sleep 0.5
nginx_url="http://127.0.0.1:$port"

path=/api/v1/registry/packages/pkg-$((PACKAGES / 2 + 1))
curl -sf "$fm_url$path" >/dev/null
curl -sf "$nginx_url$path" >/dev/null

# CPU ticks (utime + stime) of a process and its children so far: all of
# nginx's workers, or fm's one process.
ticks() {
    local total=0 p
    for p in "$@"; do
        total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid" || true); }
HZ=$(getconf CLK_TCK)

run() { # name url pids...
    local out name=$1 url=$2
    shift 2
    local before after
    before=$(ticks "$@")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url$path")
    after=$(ticks "$@")
    local rps p50 p99 reqs cpu
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    # Server CPU per request: the figure a loaded machine moves least.
    cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "$name|$rps|$p50|$p99|$cpu"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, GET $path ($(curl -s "$fm_url$path" | wc -c) bytes from fm)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
fm_line=$(run "fm registry serve" "$fm_url" "$fm_pid")
nginx_line=$(run "nginx (static index/)" "$nginx_url" $(nginx_pids))
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
nginx_rps=$(echo "$nginx_line" | cut -d'|' -f2)
nginx_cpu=$(echo "$nginx_line" | cut -d'|' -f5)
echo
echo "| server | requests/s | p50 | p99 | vs nginx | server CPU µs/req | nginx's CPU / this |"
echo "|---|---|---|---|---|---|---|"
for line in "$fm_line" "$nginx_line"; do
    IFS='|' read -r name rps p50 p99 cpu <<<"$line"
    ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')
    cratio=$(awk -v a="$cpu" -v b="$nginx_cpu" 'BEGIN { printf "%.2f", b / a }')
    echo "| $name | $rps | $p50 | $p99 | $ratio | $cpu | $cratio |"
done
