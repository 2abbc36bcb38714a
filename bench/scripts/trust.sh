#!/usr/bin/env bash
# Measurements that say whether aigw-bench can be trusted, and what aigw's latency is at half
# load. Everything runs on this host, pinned: the server under test on CPU 1, the client on
# CPU 0 (except `half-load`, see below). Prints one line per round and the medians.
#
#   bench/scripts/trust.sh generator   [--rounds N] [--seconds S]   aigw-bench vs wrk, nginx `return 200`
#   bench/scripts/trust.sh mock        [--rounds N] [--seconds S]   mock-upstream vs nginx, same bytes
#   bench/scripts/trust.sh latency     [--seconds S]                open loop on a 10 ms upstream
#   bench/scripts/trust.sh half-load   [--rounds N] [--seconds S]   aigw vs nginx proxy: p50/p99 at 50% of aigw's max
#   bench/scripts/trust.sh https       [--rounds N] [--seconds S]   aigw-bench vs wrk (HTTP/1.1) and h2load -m 1 (h2), nginx over TLS
#   bench/scripts/trust.sh streams     [--rounds N] [--seconds S]   aigw-bench --streams 16 vs h2load -m 16, h2c and h2 over TLS (+ server cost per request)
#
# AIGW_BENCH_BIN=PATH measures another aigw-bench build (e.g. the one before a change).
# Needs: cargo build --release (aigw-bench; aigw for half-load), nginx, wrk, python3, taskset;
# for https and streams also h2load (nghttp2-client) and openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=${1:-}; shift || true
rounds=5 seconds=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
BENCH=${AIGW_BENCH_BIN:-target/release/aigw-bench} AIGW=target/release/aigw
need=("$BENCH"); [[ $mode == half-load ]] && need+=("$AIGW")
for b in "${need[@]}"; do [[ -x $b ]] || { echo "no $b: cargo build --release" >&2; exit 2; }; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] && command -v wrk >/dev/null || { echo "needs nginx and wrk (apt-get install nginx-light wrk)" >&2; exit 2; }

# shellcheck source=../../scripts/bench-common.sh
source scripts/bench-common.sh
free_port() { port; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

chat='{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello hello hello hello hello hello hello hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":8,"total_tokens":18}}'

# nginx, one worker, on CPU $1, answering `return 200` on port $2 (and the chat body on /v1/).
start_nginx() {
  local cpu=$1 port=$2 name=ngx$2
  cat >"$work/$name.conf" <<EOF
worker_processes 1; daemon off; pid $work/$name.pid; error_log $work/$name.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 10000000; client_body_temp_path $work;
  server { listen 127.0.0.1:$port backlog=4096;
    location / { return 200 'ok\n'; }
    location /v1/ { default_type application/json; return 200 '$chat'; } } }
EOF
  taskset -c "$cpu" "$NGINX" -c "$work/$name.conf" >/dev/null 2>&1 & pids+=($!)
  wait_port "$port"
}

# nginx, one worker, on CPU $1, answering `return 200` over TLS with HTTP/1.1 and h2 on port $2,
# and over h2c on port $3 (a self-signed certificate: the clients do not verify).
start_nginx_tls() {
  local cpu=$1 port=$2 h2c=$3 name=ngxtls$2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/$name.key" -out "$work/$name.crt" 2>/dev/null
  cat >"$work/$name.conf" <<EOF
worker_processes 1; daemon off; pid $work/$name.pid; error_log $work/$name.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 10000000; client_body_temp_path $work;
  http2_max_concurrent_streams 128;
  server { listen 127.0.0.1:$port ssl http2 backlog=4096; listen 127.0.0.1:$h2c http2 backlog=4096;
    ssl_certificate $work/$name.crt; ssl_certificate_key $work/$name.key;
    location / { return 200 'ok\n'; } } }
EOF
  taskset -c "$cpu" "$NGINX" -c "$work/$name.conf" >/dev/null 2>&1 & pids+=($!)
  wait_port "$port"; wait_port "$h2c"
}

# aigw-bench on CPU 0, one thread: its rate. Arguments: URL, then load options.
bench_rate() { taskset -c 0 $BENCH load "$1" --threads 1 --seconds "$seconds" --json "${@:2}" | jq_ 'd["rate"] if not d["errors"] else "errors: %s" % d["errors"]'; }
# h2load on CPU 0, one thread: its rate. Arguments: URL, then h2load options.
h2load_rate() { taskset -c 0 h2load -t1 -D "$seconds" "${@:2}" "$1" | awk '/^finished in/ {print $4}'; }
# Prints one round (the reference's rate, aigw-bench's, their ratio) and collects the ratio.
compare() { local r; r=$(python3 -c "print(f'{$4/$2:.3f}')"); ratios+=("$r"); echo "$5 round $i: $1 $2 req/s, aigw-bench $4 req/s: ratio $r"; }

wrk_rate() { taskset -c "$1" wrk -t1 -c64 -d"${seconds}s" "${@:3}" "$2" | awk '/Requests\/sec/ {print $2}'; }

case $mode in
generator)
  # Rate, and the client's own CPU time per request (user + system, from getrusage): the rate
  # is capped by nginx's core, CPU per request is the client's own cost.
  np=$(free_port); start_nginx 1 "$np"
  cpu_of() { # runs "$@", prints "<stdout>|<its CPU seconds>"
    python3 -c '
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, check=True).stdout.decode()
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(out.strip() + "|" + str(r.ru_utime + r.ru_stime))' "$@"
  }
  ratios=(); cpus=()
  for i in $(seq "$rounds"); do
    wo=$(cpu_of taskset -c 0 wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$np/")
    w=$(awk '/Requests\/sec/ {print $2}' <<<"${wo%|*}"); wc=${wo##*|}
    bo=$(cpu_of taskset -c 0 $BENCH load "http://127.0.0.1:$np/" --threads 1 --connections 64 --seconds "$seconds" --json)
    b=$(jq_ 'd["rate"]' <<<"${bo%|*}"); bc=${bo##*|}
    read -r r wus bus c <<<"$(python3 -c "
w,b,wc,bc,s=$w,$b,$wc,$bc,$seconds
wus=wc/(w*s)*1e6; bus=bc/(b*s)*1e6
print(f'{b/w:.3f} {wus:.2f} {bus:.2f} {bus/wus:.3f}')")"
    ratios+=("$r"); cpus+=("$c")
    echo "round $i: wrk $w req/s ($wus us CPU/request), aigw-bench $b req/s ($bus us CPU/request): rate ratio $r, CPU ratio $c"
  done
  echo "aigw-bench/wrk median rate ratio: $(printf '%s\n' "${ratios[@]}" | median), median CPU-per-request ratio: $(printf '%s\n' "${cpus[@]}" | median)"
  ;;
mock)
  # Rate, and the server's CPU time per request (from /proc/PID/stat): with one core each, the
  # rate says who is faster when the client keeps up, CPU per request says it when it does not.
  np=$(free_port); mp=$(free_port); start_nginx 1 "$np"
  ngx_worker=$(awk '{print $1}' "/proc/${pids[-1]}/task/${pids[-1]}/children")
  taskset -c 1 $BENCH mock-upstream --addr "127.0.0.1:$mp" --threads 1 >/dev/null & pids+=($!)
  mock_pid=$!
  wait_port "$mp"
  ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
  echo '{"model":"mock-bench","messages":[{"role":"user","content":"hi"}]}' >"$work/chat.json"
  cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = io.open("$work/chat.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
EOF
  measure() { # PID URL [wrk args]: prints "<req/s> <server CPU us per request>"
    local t0 t1 r
    t0=$(ticks "$1"); r=$(wrk_rate 0 "$2" "${@:3}"); t1=$(ticks "$1")
    python3 -c "import os; print($r, round(($t1-$t0)/os.sysconf('SC_CLK_TCK')/($r*$seconds)*1e6, 2))"
  }
  for what in get chat; do
    ratios=(); cpus=()
    for i in $(seq "$rounds"); do
      if [[ $what == get ]]; then
        read -r n nc <<<"$(measure "$ngx_worker" "http://127.0.0.1:$np/")"
        read -r m mc <<<"$(measure "$mock_pid" "http://127.0.0.1:$mp/")"
      else
        read -r n nc <<<"$(measure "$ngx_worker" "http://127.0.0.1:$np/v1/chat/completions" -s "$work/post.lua")"
        read -r m mc <<<"$(measure "$mock_pid" "http://127.0.0.1:$mp/v1/chat/completions" -s "$work/post.lua")"
      fi
      r=$(python3 -c "print(f'{$m/$n:.3f}')"); ratios+=("$r")
      c=$(python3 -c "print(f'{$mc/$nc:.3f}')"); cpus+=("$c")
      echo "$what round $i: nginx $n req/s ($nc us CPU/request), mock-upstream $m req/s ($mc us CPU/request): rate ratio $r, CPU ratio $c"
    done
    echo "$what: mock-upstream/nginx median rate ratio $(printf '%s\n' "${ratios[@]}" | median), median CPU-per-request ratio $(printf '%s\n' "${cpus[@]}" | median)"
  done
  ;;
latency)
  mp=$(free_port)
  taskset -c 1 $BENCH mock-upstream --addr "127.0.0.1:$mp" --threads 1 --latency 10 >/dev/null & pids+=($!)
  wait_port "$mp"
  # The upstream's real service time: its 10 ms sleep rounds up to the timer's next tick.
  echo "closed loop, 1 connection (the service time s; a closed loop cannot see queueing):"
  closed=$(taskset -c 0 $BENCH load "http://127.0.0.1:$mp/" --connections 1 --seconds "$seconds" --threads 1 --json)
  s_ms=$(jq_ 'd["latency"]["mean_ms"]' <<<"$closed")
  jq_ '"  p50 %s ms, p99 %s ms, max %s ms, mean s = %s ms" % (d["latency"]["p50_ms"], d["latency"]["p99_ms"], d["latency"]["max_ms"], d["latency"]["mean_ms"])' <<<"$closed"
  # Below capacity: 50 connections each sending every 50 ms. Expected: every latency ~s.
  echo "open loop, 1000 req/s over 50 connections (no queueing): expected every latency ~s"
  jq_ '"  p50 %s ms, p90 %s ms, p99 %s ms, max %s ms, %s requests" % (d["latency"]["p50_ms"], d["latency"]["p90_ms"], d["latency"]["p99_ms"], d["latency"]["max_ms"], d["requests"])' \
    <<<"$(taskset -c 0 $BENCH load "http://127.0.0.1:$mp/" --rate 1000 --connections 50 --seconds "$seconds" --threads 1 --json)"
  # Above capacity: one connection, 200 due per second, about 1/s possible. The k-th request
  # (from 0) goes out at s*k ms (when the previous answer is in), was due at 5k ms, and is
  # answered at s(k+1): latency s(k+1) - 5k, rising linearly. The run stops sending at S s.
  python3 -c "
import math
s=$s_ms; n=math.ceil($seconds*1000/s)
lat=sorted(s*(k+1)-5*k for k in range(n))
q=lambda p: lat[min(n-1, int(p*n))]
print(f'open loop, 200 req/s on 1 connection (queueing): expected {n} sent, p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, p99 {q(0.99):.0f} ms, max {lat[-1]:.0f} ms')"
  jq_ '"  measured %s sent (%s unsent), p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms" % (d["requests"], d["unsent"], d["latency"]["p50_ms"], d["latency"]["p90_ms"], d["latency"]["p99_ms"], d["latency"]["max_ms"])' \
    <<<"$(taskset -c 0 $BENCH load "http://127.0.0.1:$mp/" --rate 200 --connections 1 --seconds "$seconds" --threads 1 --json)"
  ;;
half-load)
  # Backend nginx and the client on CPU 1, each proxy (one worker) alone on CPU 0, as in
  # shared/bench/vs-nginx.sh. The max rate of each proxy is measured closed loop, then both
  # are driven open loop at 50% of aigw's max.
  be=$(free_port); np=$(free_port); ap=$(free_port); adm=$(free_port)
  start_nginx 1 "$be"
  cat >"$work/proxy.conf" <<EOF
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 10240; }
http { access_log off; keepalive_requests 10000000;
  upstream be { server 127.0.0.1:$be; keepalive 256; }
  server { listen 127.0.0.1:$np backlog=4096;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
  taskset -c 0 "$NGINX" -c "$work/proxy.conf" >/dev/null 2>&1 & pids+=($!)
  cat >"$work/aigw.yaml" <<EOF
instance: { workers: 1 }
admin: { address: 127.0.0.1:$adm }
listeners: [ { name: main, address: 127.0.0.1:$ap } ]
services: [ { name: backend, endpoints: ["127.0.0.1:$be"] } ]
routes: [ { name: all, match: { path_prefix: "/" }, service: backend } ]
EOF
  AIGW_LOG=warn taskset -c 0 $AIGW run -c "$work/aigw.yaml" >"$work/aigw.log" 2>&1 & pids+=($!)
  wait_port "$np"; wait_port "$ap"
  load() { taskset -c 1 $BENCH load "http://127.0.0.1:$1/" --threads 1 --connections 64 --seconds "$seconds" --json "${@:2}"; }
  amax=(); nmax=()
  for i in $(seq "$rounds"); do
    a=$(load "$ap" | jq_ 'd["rate"]'); n=$(load "$np" | jq_ 'd["rate"]')
    amax+=("$a"); nmax+=("$n"); echo "max round $i: aigw $a req/s, nginx $n req/s"
  done
  am=$(printf '%s\n' "${amax[@]}" | median); nm=$(printf '%s\n' "${nmax[@]}" | median)
  rate=$(python3 -c "print(int($am/2))")
  echo "median max: aigw $am req/s, nginx $nm req/s; open loop at $rate req/s (50% of aigw's)"
  ap50=(); ap99=(); np50=(); np99=()
  for i in $(seq "$rounds"); do
    a=$(load "$ap" --rate "$rate" | jq_ 'd["latency"]["p50_ms"], d["latency"]["p99_ms"], sum(d["errors"].values())')
    n=$(load "$np" --rate "$rate" | jq_ 'd["latency"]["p50_ms"], d["latency"]["p99_ms"], sum(d["errors"].values())')
    read -r a50 a99 ae <<<"$(echo $a)"; read -r n50 n99 ne <<<"$(echo $n)"
    ap50+=("$a50"); ap99+=("$a99"); np50+=("$n50"); np99+=("$n99")
    echo "round $i at $rate req/s: aigw p50 $a50 ms p99 $a99 ms (errors $ae); nginx p50 $n50 ms p99 $n99 ms (errors $ne)"
  done
  echo "medians at $rate req/s: aigw p50 $(printf '%s\n' "${ap50[@]}" | median) ms p99 $(printf '%s\n' "${ap99[@]}" | median) ms; nginx p50 $(printf '%s\n' "${np50[@]}" | median) ms p99 $(printf '%s\n' "${np99[@]}" | median) ms"
  ;;
https)
  # One core each (nginx on CPU 1, the client on CPU 0), 64 connections, keep-alive: one
  # handshake per connection, the rest is TLS record work on both sides.
  command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 2; }
  tp=$(free_port); hp=$(free_port); start_nginx_tls 1 "$tp" "$hp"
  ratios=()
  for i in $(seq "$rounds"); do
    w=$(wrk_rate 0 "https://127.0.0.1:$tp/")
    b=$(bench_rate "https://127.0.0.1:$tp/" --connections 64 -k)
    compare wrk "$w" aigw-bench "$b" "https/1.1"
  done
  echo "https/1.1: aigw-bench/wrk median rate ratio $(printf '%s\n' "${ratios[@]}" | median)"
  ratios=()
  for i in $(seq "$rounds"); do
    h=$(h2load_rate "https://127.0.0.1:$tp/" -c64 -m1)
    b=$(bench_rate "https://127.0.0.1:$tp/" --connections 64 --http2 -k)
    compare "h2load -m 1" "$h" aigw-bench "$b" "h2 (TLS)"
  done
  echo "h2 over TLS, 1 stream: aigw-bench/h2load median rate ratio $(printf '%s\n' "${ratios[@]}" | median)"
  ;;
streams)
  # 8 connections with 16 streams each, h2c then h2 over TLS. Besides the rates, what each
  # client costs the server: nginx's CPU time per request (/proc/PID/stat) and the loopback's
  # TCP segments per request (/proc/net/snmp InSegs + OutSegs over the run; host-wide, so
  # anything else on the host's loopback counts too). These hold better than rates on a
  # shared host: a server paying more per request for one client is slower for it.
  command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 2; }
  tp=$(free_port); hp=$(free_port); start_nginx_tls 1 "$tp" "$hp"
  ngx_worker=$(awk '{print $1}' "/proc/${pids[-1]}/task/${pids[-1]}/children")
  segs() { awk '/^Tcp:/ { if (!n) { for (i = 2; i <= NF; i++) col[$i] = i; n = 1 } else printf "%.0f\n", $col["InSegs"] + $col["OutSegs"] }' /proc/net/snmp; }
  ticks() { awk '{print $14+$15}' "/proc/$ngx_worker/stat"; }
  # "<segments> <ticks>" now
  mark() { echo "$(segs) $(ticks)"; }
  # per request between two marks: "<segments> <nginx CPU us>"
  per() { python3 -c "import os; a,b,n=[int(x) for x in '$1'.split()],[int(x) for x in '$2'.split()],$3; print(f'{(b[0]-a[0])/n:.2f} {(b[1]-a[1])/os.sysconf(\"SC_CLK_TCK\")/n*1e6:.2f}')"; }
  median_of() { printf '%s\n' "$@" | median; }
  for url in "http://127.0.0.1:$hp/" "https://127.0.0.1:$tp/"; do
    ratios=(); hsegs=(); bsegs=(); hcpu=(); bcpu=()
    k=(); [[ $url == https* ]] && k=(-k)
    for i in $(seq "$rounds"); do
      m0=$(mark)
      out=$(taskset -c 0 h2load -t1 -D "$seconds" -c8 -m16 "$url")
      m1=$(mark)
      h=$(awk '/^finished in/ {print $4}' <<<"$out"); hn=$(awk '/^requests:/ {print $8}' <<<"$out")
      out=$(taskset -c 0 $BENCH load "$url" --threads 1 --seconds "$seconds" --json --connections 8 --http2 --streams 16 "${k[@]}")
      m2=$(mark)
      b=$(jq_ 'd["rate"] if not d["errors"] else "errors: %s" % d["errors"]' <<<"$out"); bn=$(jq_ 'd["requests"]' <<<"$out")
      read -r hs hc <<<"$(per "$m0" "$m1" "$hn")"; read -r bs bc <<<"$(per "$m1" "$m2" "$bn")"
      hsegs+=("$hs"); bsegs+=("$bs"); hcpu+=("$hc"); bcpu+=("$bc")
      compare "h2load -m 16" "$h" aigw-bench "$b" "${url%%:*}"
      echo "  per request: h2load $hs segments, nginx $hc us CPU; aigw-bench $bs segments, nginx $bc us CPU"
    done
    echo "${url%%:*} 8 connections x 16 streams: aigw-bench/h2load median rate ratio $(median_of "${ratios[@]}");" \
      "medians per request: h2load $(median_of "${hsegs[@]}") segments, nginx $(median_of "${hcpu[@]}") us CPU;" \
      "aigw-bench $(median_of "${bsegs[@]}") segments, nginx $(median_of "${bcpu[@]}") us CPU"
  done
  ;;
*) echo "usage: $0 generator|mock|latency|half-load|https|streams [--rounds N] [--seconds S]" >&2; exit 2 ;;
esac
