#!/usr/bin/env bash
# HTTP/2 throughput of aigw and of nginx as reverse proxies in front of the same HTTP/1.1
# backend, measured with h2load in one run so the machine's drift cancels out of the ratio:
# cleartext (h2c, prior knowledge) by default, HTTP/2 over TLS 1.3 (ALPN h2, the same ECDSA
# P-256 certificate for both) with --tls.
#
#   scripts/h2-vs-nginx.sh [--tls] [--rounds N] [--requests N] [--conns C] [--streams M] [--bin PATH]
#
# Both proxies run one worker pinned to CPU 0; the backend (nginx `return 200`, 1 worker) and
# h2load (1 thread) share CPU 1. Rounds alternate aigw and nginx. Prints one line per round and,
# last, the median ratio aigw/nginx of requests per second. A round where any request failed
# counts as 0. Needs: nginx, h2load (nghttp2-client), python3, taskset.
set -euo pipefail

rounds=5 requests=200000 conns=10 streams=10 bin=target/release/aigw tls=
while [[ $# -gt 0 ]]; do
  case $1 in
    --tls) tls=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "no aigw binary at $bin (build it: cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v h2load >/dev/null || { echo "h2load is missing (apt-get install nghttp2-client)" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

be=$(port); np=$(port); ap=$(port); adm=$(port)
cat >"$work/backend.conf" <<EOF
worker_processes 1; daemon off; pid $work/backend.pid; error_log $work/backend.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$be backlog=4096; location / { return 200 'hello from the backend'; } } }
EOF
# `listen ... http2` without ssl is h2c by prior knowledge (nginx >= 1.25 also takes `http2 on;`).
scheme=http nginx_tls= aigw_tls=
if [[ -n $tls ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost 2>/dev/null
  scheme=https
  nginx_tls="ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3"
  aigw_tls="    tls:
      certificates: [{ cert: \"$work/cert.pem\", key: \"$work/key.pem\" }]"
fi
cat >"$work/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000; http2_max_concurrent_streams 128;
  upstream be { server 127.0.0.1:$be; keepalive 256; }
  server { listen 127.0.0.1:$np http2 backlog=4096 ${nginx_tls:-};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
cat >"$work/aigw.yaml" <<EOF
instance:
  workers: 1
admin:
  address: 127.0.0.1:$adm
listeners:
  - name: main
    address: 127.0.0.1:$ap
$aigw_tls
services:
  - name: backend
    endpoints: ["127.0.0.1:$be"]
routes:
  - name: all
    match: { path_prefix: "/" }
    service: backend
EOF

taskset -c 1 "$NGINX" -c "$work/backend.conf" & pids+=($!)
taskset -c 0 "$NGINX" -c "$work/proxy.conf" & pids+=($!)
AIGW_LOG=warn taskset -c 0 "$bin" run -c "$work/aigw.yaml" >"$work/aigw.log" 2>&1 & pids+=($!)
wait_port "$be"; wait_port "$np"; wait_port "$ap" || { cat "$work/aigw.log" >&2; exit 1; }
for p in $np $ap; do
  if [[ -n $tls ]]; then
    v=$(curl -sk -o /dev/null -w '%{http_code} %{http_version}' --http2 "https://127.0.0.1:$p/")
  else
    v=$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --http2-prior-knowledge "http://127.0.0.1:$p/")
  fi
  [[ $v == "200 2" ]] || { echo "port $p answered '$v', not '200 2'" >&2; cat "$work/aigw.log" >&2; exit 1; }
done

run() { # prints requests/sec, or 0 when any request failed
  local out; out=$(taskset -c 1 h2load -n "$requests" -c "$conns" -m "$streams" "$scheme://127.0.0.1:$1/" 2>&1)
  if ! grep -q "requests: $requests total, $requests started, $requests done, $requests succeeded, 0 failed" <<<"$out"; then
    echo 0; return
  fi
  awk '/^finished in/ {print $4}' <<<"$out"
}
ratios=()
for i in $(seq "$rounds"); do
  a=$(run "$ap"); n=$(run "$np")
  r=$(python3 -c "print(f'{$a/$n:.3f}' if $n else 0)")
  ratios+=("$r")
  echo "round $i: aigw $a req/s, nginx $n req/s, ratio $r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
label=h2c; [[ -n $tls ]] && label="h2 over TLS"
echo "$label -n $requests -c $conns -m $streams: aigw/nginx req/s median ratio: $median"
