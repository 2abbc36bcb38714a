#!/usr/bin/env bash
# HTTPS: aigw against nginx on the same ECDSA P-256 certificate, measured in one run so the
# machine's drift cancels out of the ratio (docs/benchmarks.md).
#
#   scripts/tls-bench.sh [--rounds N] [--seconds S] [--conns C] [--threads T] [--bin PATH]
#
# handshakes: new full TLS 1.3 handshakes per second (no resumption; the client closes right
#   after the handshake), driven by the aigw-tls example `tls-handshakes`, which checks no
#   signature so that the server, not the client, runs out of CPU.
# keepalive: HTTPS requests per second over C keep-alive connections (wrk), each proxy in
#   front of the same backend (nginx `return 200`).
# Both servers run one worker pinned to CPU 0; the backend and the load generators share CPU 1.
# Besides throughput, each run reports the server's CPU time per operation (from
# /proc/PID/stat of aigw and of nginx's worker): on two cores the load generators cannot
# saturate the server's core, so CPU per operation is the server-side cost compared.
# Needs: nginx, wrk, openssl, python3, taskset; builds the example with cargo.
set -euo pipefail

rounds=3 seconds=5 conns=64 threads=4 bin=target/release/aigw
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "no aigw binary at $bin (build it: cargo build --release)" >&2; exit 2; }
bin=$(realpath "$bin")
cargo build --release -q -p aigw-tls --example tls-handshakes
hs=$(realpath target/release/examples/tls-handshakes)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

source "$(dirname "${BASH_SOURCE[0]}")/bench-common.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

be=$(port); np=$(port); ap=$(port); adm=$(port)
cat >"$work/backend.conf" <<EOF
worker_processes 1; daemon off; pid $work/backend.pid; error_log $work/backend.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$be backlog=4096; location / { return 200 'ok'; } } }
EOF
cat >"$work/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server 127.0.0.1:$be; keepalive 256; }
  server { listen 127.0.0.1:$np ssl backlog=4096;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
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
    tls:
      certificates: [{ cert: "$work/cert.pem", key: "$work/key.pem" }]
      key_offload: software
services:
  - name: backend
    endpoints: ["127.0.0.1:$be"]
routes:
  - name: all
    match: { path_prefix: "/" }
    service: backend
EOF

taskset -c 1 "$NGINX" -c "$work/backend.conf" & pids+=($!)
taskset -c 0 "$NGINX" -c "$work/proxy.conf" & pids+=($!); nginx_master=$!
AIGW_LOG=warn taskset -c 0 "$bin" run -c "$work/aigw.yaml" >"$work/aigw.log" 2>&1 & pids+=($!); aigw_pid=$!
wait_port "$be"; wait_port "$np"; wait_port "$ap" || { cat "$work/aigw.log" >&2; exit 1; }
for p in $np $ap; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$p/")
  [[ $code == 200 ]] || { echo "port $p answered $code, not 200" >&2; cat "$work/aigw.log" >&2; exit 1; }
done

nginx_worker=$(ps -o pid= --ppid "$nginx_master" | head -1 | tr -d ' ')
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Each prints "RATE MICROSECONDS_OF_SERVER_CPU_PER_OPERATION"; $2 is the server's pid.
measure() { # $1: rate, $2: pid, $3: CPU ticks before
  python3 -c "r=float('$1' or 0); c=($(cpu_ticks "$2")-$3)/$tick; print(r, round(c/(r*$seconds)*1e6,2) if r else 0)"
}
handshakes() {
  local before rate; before=$(cpu_ticks "$2")
  rate=$(taskset -c 1 "$hs" "127.0.0.1:$1" "$seconds" "$threads" | awk '{print $1}')
  measure "$rate" "$2" "$before"
}
keepalive() {
  local before out rate; before=$(cpu_ticks "$2")
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" "https://127.0.0.1:$1/" 2>&1)
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then rate=0; else rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); fi
  measure "$rate" "$2" "$before"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1/$2:.3f}' if $2 else 0)"; }

hr=(); kr=(); hc=(); kc=()
for i in $(seq "$rounds"); do
  read -r a ac < <(handshakes "$ap" "$aigw_pid"); read -r n nc < <(handshakes "$np" "$nginx_worker")
  r=$(ratio "$a" "$n"); c=$(ratio "$nc" "$ac"); hr+=("$r"); hc+=("$c")
  echo "round $i handshakes: aigw $a/s ($ac us CPU each), nginx $n/s ($nc us), rate ratio $r, CPU-per-handshake ratio nginx/aigw $c"
  read -r a ac < <(keepalive "$ap" "$aigw_pid"); read -r n nc < <(keepalive "$np" "$nginx_worker")
  r=$(ratio "$a" "$n"); c=$(ratio "$nc" "$ac"); kr+=("$r"); kc+=("$c")
  echo "round $i keep-alive: aigw $a req/s ($ac us CPU each), nginx $n req/s ($nc us), rate ratio $r, CPU-per-request ratio nginx/aigw $c"
done
echo "new TLS 1.3 handshakes/s (ECDSA P-256) aigw/nginx median ratio: $(median "${hr[@]}"); server CPU per handshake nginx/aigw median: $(median "${hc[@]}")"
echo "HTTPS keep-alive req/s aigw/nginx median ratio: $(median "${kr[@]}"); server CPU per request nginx/aigw median: $(median "${kc[@]}")"
