#!/usr/bin/env bash
# Requests per second and CPU per KiB of aigw proxying a 64 KiB JSON body, with response
# compression (gzip level 1, software) on and off, measured in one run so the machine's drift
# cancels out of the ratio. Also nginx with `gzip on; gzip_comp_level 1` as a reference.
#
#   scripts/compression-bench.sh [--rounds N] [--seconds S] [--conns C] [--bin PATH]
#
# aigw (and the nginx proxy) run one worker pinned to CPU 0; the backend (nginx, 1 worker)
# and wrk share CPU 1. wrk sends `Accept-Encoding: gzip` in every run (the "off" gateway has
# no compression configured). CPU per KiB = the proxy's user+system CPU time during the run
# (from /proc/PID/stat) divided by the identity KiB it served.
# Needs: nginx, wrk, python3, taskset.
set -euo pipefail

rounds=3 seconds=5 conns=32 bin=target/release/aigw
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "no aigw binary at $bin (build it: cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

python3 - "$work/body.json" <<'EOF'
import json, sys
items, i = [], 0
while len(json.dumps(items)) < 64 * 1024:
    items.append({"id": i, "user": f"user-{i * 7919 % 10007}", "score": i % 100,
                  "tags": ["alpha", "beta"], "active": i % 3 == 0})
    i += 1
open(sys.argv[1], "w").write(json.dumps(items)[: 64 * 1024 - 1] + "]")
EOF
size=$(stat -c %s "$work/body.json")
# nginx workers run as nobody: let them read the file.
chmod 755 "$work"; chmod 644 "$work/body.json"

be=$(port); on=$(port); off=$(port); ng=$(port); a1=$(port); a2=$(port)
cat >"$work/backend.conf" <<EOF
worker_processes 1; daemon off; pid $work/backend.pid; error_log $work/backend.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000; types { application/json json; }
  server { listen 127.0.0.1:$be backlog=4096; root $work; location / { try_files /body.json =404; default_type application/json; } } }
EOF
cat >"$work/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000;
  gzip on; gzip_comp_level 1; gzip_types application/json; gzip_min_length 1024; gzip_proxied any;
  upstream be { server 127.0.0.1:$be; keepalive 256; }
  server { listen 127.0.0.1:$ng backlog=4096;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
gw() { # port admin compression-line
  cat <<EOF
instance: { workers: 1 }
admin: { address: 127.0.0.1:$2 }
listeners: [{ name: main, address: 127.0.0.1:$1 }]
services: [{ name: be, endpoints: ["127.0.0.1:$be"] }]
routes: [{ name: all, service: be }]
$3
EOF
}
gw "$on" "$a1" "compression: { gzip: { enabled: true, min_size: 1024, level: 1 }, backend: software }" >"$work/on.yaml"
gw "$off" "$a2" "" >"$work/off.yaml"

taskset -c 1 "$NGINX" -c "$work/backend.conf" & pids+=($!)
taskset -c 0 "$NGINX" -c "$work/proxy.conf" & pids+=($!)
AIGW_LOG=warn taskset -c 0 "$bin" run -c "$work/on.yaml" >"$work/on.log" 2>&1 & pid_on=$!; pids+=($pid_on)
AIGW_LOG=warn taskset -c 0 "$bin" run -c "$work/off.yaml" >"$work/off.log" 2>&1 & pid_off=$!; pids+=($pid_off)
wait_port "$be"; wait_port "$ng"; wait_port "$on"; wait_port "$off"
for p in $on $off $ng; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --compressed "http://127.0.0.1:$p/")
  [[ $code == 200 ]] || { echo "port $p answered $code" >&2; exit 1; }
done
enc=$(curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$on/" | grep -i '^content-encoding' || true)
[[ -n $enc ]] || { echo "the compressing gateway did not compress" >&2; exit 1; }
# The worker does the work: measure its CPU, not the master's.
ngpid=$(pgrep -P "$(cat "$work/proxy.pid")" | head -1)

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
run() { # port pid -> "req/s cpu_us_per_KiB"
  local c0 out rps c1
  c0=$(cpu "$2")
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1/" 2>&1)
  c1=$(cpu "$2")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "0 0"; return; fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  python3 -c "t=$(getconf CLK_TCK); r=$rps; print(f'{r:.0f}', f'{($c1-$c0)/t*1e6/(r*$seconds*$size/1024):.2f}')"
}
ratios=()
for i in $(seq "$rounds"); do
  read -r r_on c_on < <(run "$on" "$pid_on")
  read -r r_off c_off < <(run "$off" "$pid_off")
  read -r r_ng c_ng < <(run "$ng" "$ngpid")
  r=$(python3 -c "print(f'{$r_on/$r_off:.3f}' if $r_off else 0)")
  ratios+=("$r")
  echo "round $i: aigw gzip on $r_on req/s ($c_on us CPU/KiB), off $r_off req/s ($c_off us CPU/KiB), nginx gzip 1 $r_ng req/s ($c_ng us CPU/KiB); on/off $r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "64 KiB JSON, aigw gzip-on/off req/s median ratio: $median"
