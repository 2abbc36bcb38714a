#!/usr/bin/env bash
# Where the CPU goes in shared/bench/vs-nginx.sh's setup: for aigw and nginx as the proxy, the
# CPU time each process spends per 100,000 requests (proxy on CPU 0; backend and wrk on CPU 1,
# as vs-nginx.sh places them), and TCP segments per request. A core can give 100 ticks (1 s)
# per second, so a side whose ticks per 100k requests is T caps the rate at 1e7/T req/s: this
# shows which core bounds the benchmark and what ratio the setup can show at most.
#
#   scripts/cpu-per-request.sh [--mode plain|chat] [--rounds N] [--seconds S] [--bin PATH]
#
# Needs: nginx, wrk, python3, taskset, nstat (iproute2), GNU time.
set -euo pipefail

mode=plain rounds=3 seconds=4 conns=64 bin=target/release/aigw
while [[ $# -gt 0 ]]; do
  case $1 in
    --mode) mode=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "no aigw binary at $bin (build it: cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
for tool in nginx wrk nstat /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

be=$(port); np=$(port); ap=$(port); adm=$(port)
body='{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
cat >"$work/backend.conf" <<EOF
worker_processes 1; daemon off; pid $work/backend.pid; error_log $work/backend.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000; default_type application/json;
  server { listen 127.0.0.1:$be backlog=4096; location / { return 200 '$body'; } } }
EOF
cat >"$work/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server 127.0.0.1:$be; keepalive 256; }
  server { listen 127.0.0.1:$np backlog=4096;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
cat >"$work/aigw.yaml" <<EOF
instance: { workers: 1 }
admin: { address: "127.0.0.1:$adm" }
listeners: [ { name: main, address: "127.0.0.1:$ap" } ]
services: [ { name: backend, endpoints: ["127.0.0.1:$be"] } ]
routes: [ { name: raw, match: { path_prefix: "/raw" }, service: backend } ]
model_apis:
  - name: llm
    base_path: /v1
    providers: [ { name: main, kind: openai, base_url: "http://127.0.0.1:$be/v1", api_keys: ["sk-bench"] } ]
EOF
cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"hello"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
EOF

taskset -c 1 nginx -c "$work/backend.conf" & pids+=($!)
taskset -c 0 nginx -c "$work/proxy.conf" & pids+=($!)
AIGW_LOG=warn taskset -c 0 "$bin" run -c "$work/aigw.yaml" >"$work/aigw.log" 2>&1 & apid=$!; pids+=($apid)
wait_port "$be"; wait_port "$np"; wait_port "$ap" || { cat "$work/aigw.log" >&2; exit 1; }
sleep 0.5
backend_worker=$(pgrep -P "$(cat "$work/backend.pid")")
nginx_worker=$(pgrep -P "$(cat "$work/proxy.pid")")

# utime+stime of a process, all its threads included, in clock ticks (1/100 s).
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

if [[ $mode == chat ]]; then
  aigw_path=/v1/chat/completions; nginx_path=/v1/chat/completions; script=(-s "$work/post.lua")
else
  aigw_path=/raw; nginx_path=/; script=()
fi

measure() { # name port path proxy-pid
  local b0 p0 b1 p1 out req rps wrk_ticks segs
  nstat -n >/dev/null
  b0=$(ticks "$backend_worker"); p0=$(ticks "$4")
  out=$( { /usr/bin/time -f "WRKCPU %U %S" taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" "${script[@]}" "http://127.0.0.1:$2$3"; } 2>&1 )
  b1=$(ticks "$backend_worker"); p1=$(ticks "$4")
  segs=$(nstat TcpOutSegs | awk '/TcpOutSegs/ {print $2}')
  req=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  wrk_ticks=$(awk '/WRKCPU/ {print ($2+$3)*100}' <<<"$out")
  python3 - "$1" "$req" "$rps" "$((p1-p0))" "$((b1-b0))" "$wrk_ticks" "$segs" <<'EOF'
import sys
name, req, rps, proxy, backend, wrk, segs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *map(float, sys.argv[4:])
per = lambda t: t / req * 1e5
cpu1 = per(backend) + per(wrk)
print(f"{name:6} {rps:9.0f} req/s | ticks per 100k requests: proxy (CPU 0) {per(proxy):5.1f}, "
      f"backend {per(backend):5.1f} + wrk {per(wrk):5.1f} = CPU 1 {cpu1:5.1f} | "
      f"ceilings: CPU 0 {1e7/per(proxy):7.0f}, CPU 1 {1e7/cpu1:7.0f} req/s | {segs/req:.2f} segments/req")
EOF
}
for i in $(seq "$rounds"); do
  echo "round $i ($mode)"
  measure aigw "$ap" "$aigw_path" "$apid"
  measure nginx "$np" "$nginx_path" "$nginx_worker"
done
