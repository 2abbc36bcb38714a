#!/usr/bin/env python3
"""Time to first token (TTFT) that aigw adds to a streamed chat completion.

What it measures: for `POST /v1/chat/completions` with `"stream": true`, the time from just
before the client writes the request bytes to the arrival of the first `data:` event of the
response body, once straight to a fake upstream ("direct") and once through aigw ("via aigw"),
and reports p50/p90/p99 of each and the difference (via aigw minus direct) in milliseconds.

How:
  * A fake OpenAI-compatible upstream runs in this process on 127.0.0.1:0 (raw sockets, one
    thread per connection, HTTP/1.1 keep-alive, TCP_NODELAY). It answers 200 text/event-stream
    chunked, writes the first event (delta content "Hello") at once, then --events more every
    --gap-ms, then a usage chunk (choices: []) if stream_options.include_usage was asked, then
    `data: [DONE]` and the last chunk. Each event is its own chunk, written with one send.
  * aigw (--bin, default target/release/aigw) runs with a generated config: one worker, admin
    and listener on 127.0.0.1:0, model API `llm` at /v1 with one openai provider pointing at
    the fake upstream. The listener port is read from its stderr (AIGW_LOG=info).
  * One persistent raw-socket connection per target sends requests one after another,
    alternating direct / via aigw: --warmup each (discarded), then --requests each. The
    client parses the response head and chunked framing itself; the first-token time is taken
    right after the recv() that delivered the bytes "data:" of the first event. Every response
    is read to its end (and checked for "Hello" and [DONE]) before the next request.
  * --pin runs aigw under `taskset -c GW` and pins this process (client + upstream) to CLIENT.
"""
import argparse, json, os, re, shlex, signal, socket, statistics, subprocess, sys, tempfile
import threading, time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCS = []  # started gateways, killed on exit
BODY = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hello"}]}'


class Conn:
    """Buffered reader over a socket; `t_last` is the perf_counter_ns of the latest recv."""

    def __init__(self, sock):
        self.sock, self.buf, self.t_last = sock, bytearray(), 0

    def fill(self):
        data = self.sock.recv(65536)
        self.t_last = time.perf_counter_ns()
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def until(self, sep):
        while (i := self.buf.find(sep)) < 0:
            self.fill()
        out = bytes(self.buf[:i]); del self.buf[:i + len(sep)]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n]); del self.buf[:n]
        return out

    def head(self):
        lines = self.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return lines[0], hdrs

    def body(self, hdrs, on_data=None):
        """Reads a body (chunked or content-length). `on_data(body_so_far)` after each chunk."""
        if "chunked" not in hdrs.get("transfer-encoding", "").lower():
            return self.exact(int(hdrs.get("content-length", "0")))
        out = bytearray()
        while True:
            size = int(self.until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while self.until(b"\r\n"):  # trailers up to the empty line
                    pass
                return bytes(out)
            out += self.exact(size); self.exact(2)
            if on_data:
                on_data(out)


# ---------------------------------------------------------------- fake upstream
def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(obj):
    return chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def serve_conn(sock, events, gap):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Conn(sock)
    try:
        while True:
            line, hdrs = c.head()
            req = json.loads(c.body(hdrs) or b"{}")
            if not line.startswith("POST ") or "/chat/completions" not in line:
                sock.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                continue
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": req.get("model", "m")}
            if not req.get("stream"):
                msg = json.dumps({**base, "object": "chat.completion", "choices": [{"index": 0,
                    "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}]}).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(msg), msg))
                continue
            sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
            sock.sendall(event({**base, "choices": [{"index": 0, "delta":
                {"role": "assistant", "content": "Hello"}, "finish_reason": None}]}))
            for i in range(events):
                time.sleep(gap)
                sock.sendall(event({**base, "choices": [{"index": 0, "delta": {"content": " x"},
                    "finish_reason": "stop" if i == events - 1 else None}]}))
            if (req.get("stream_options") or {}).get("include_usage"):
                sock.sendall(event({**base, "choices": [], "usage": {"prompt_tokens": 5,
                    "completion_tokens": events + 1, "total_tokens": events + 6}}))
            sock.sendall(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    except (EOFError, OSError, ValueError):
        pass
    finally:
        sock.close()


def start_upstream(events, gap):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0)); ls.listen(128)

    def accept():
        while True:
            s, _ = ls.accept()
            threading.Thread(target=serve_conn, args=(s, events, gap), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1]


# ---------------------------------------------------------------- gateway
def start_gateway(args, up_port, tmp):
    cfg = Path(tmp) / "aigw.yaml"
    cfg.write_text(
        "instance:\n  workers: 1\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n"
        "  - name: main\n    address: 127.0.0.1:0\nmodel_apis:\n  - name: llm\n    base_path: /v1\n"
        "    providers:\n      - { name: up, kind: openai, "
        f'base_url: "http://127.0.0.1:{up_port}/v1", api_keys: ["sk-x"] }}\n')
    cmd = [args.bin, "run", "-c", str(cfg)]
    if args.pin:
        cmd = ["taskset", "-c", args.pin.split(":")[0]] + cmd
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "AIGW_LOG": "info"})
    PROCS.append(proc)
    tail, port, ready = deque(maxlen=40), [], threading.Event()

    def read():
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            if not port and (m := re.search(r"listener \S+ listening on [\d.]+:(\d+)", line)):
                port.append(int(m.group(1))); ready.set()
        ready.set()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(10) or not port:
        proc.kill()
        sys.exit("aigw did not report its listener within 10 s:\n" + "\n".join(tail))
    return proc, port[0]


# ---------------------------------------------------------------- client
class Client:
    def __init__(self, port, name):
        self.port, self.name, self.conn = port, name, None
        self.req = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
                    b"content-type: application/json\r\nauthorization: Bearer sk-x\r\n"
                    b"content-length: %d\r\n\r\n%s" % (port, len(BODY), BODY))

    def ttft_ns(self):
        if self.conn is None:
            s = socket.create_connection(("127.0.0.1", self.port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = Conn(s)
        c, first = self.conn, []

        def on_data(body):
            if not first and b"data:" in body:
                first.append(c.t_last)
        t0 = time.perf_counter_ns()
        c.sock.sendall(self.req)
        status, hdrs = c.head()
        body = c.body(hdrs, on_data)
        if status.split()[1:2] != ["200"] or not first or b"Hello" not in body or b"[DONE]" not in body:
            raise RuntimeError(f"{self.name}: bad response {status!r} {hdrs} {body[:300]!r}")
        if hdrs.get("connection", "").lower() == "close":
            c.sock.close(); self.conn = None
        return first[0] - t0


def pct(xs):
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target/release/aigw"))
    ap.add_argument("--requests", type=int, default=2000, help="measured requests per target")
    ap.add_argument("--warmup", type=int, default=200, help="discarded requests per target")
    ap.add_argument("--events", type=int, default=3, help="events after the first one")
    ap.add_argument("--gap-ms", type=float, default=5.0, help="time between events")
    ap.add_argument("--pin", nargs="?", const="0:1", metavar="GW:CLIENT",
                    help="taskset CPUs for aigw and for this process (default 0:1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    cmdline = shlex.join(["python3"] + sys.argv)
    if args.pin:
        os.sched_setaffinity(0, {c for part in args.pin.split(":")[1].split(",") for a, _, b in
                                 [part.partition("-")] for c in range(int(a), int(b or a) + 1)})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    srcs = [p for d in ("proxy/src", "config/src") for p in (ROOT / d).rglob("*.rs")]
    if Path(args.bin).exists() and any(p.stat().st_mtime > Path(args.bin).stat().st_mtime for p in srcs):
        print(f"warning: {args.bin} is older than the sources", file=sys.stderr)
    up_port = start_upstream(args.events, args.gap_ms / 1000)
    try:
        with tempfile.TemporaryDirectory(prefix="ttft-bench-") as tmp:
            proc, gw_port = start_gateway(args, up_port, tmp)
            clients = [Client(up_port, "direct"), Client(gw_port, "aigw")]
            res = {"direct": [], "aigw": []}
            for i in range(args.warmup + args.requests):
                for cl in clients:
                    t = cl.ttft_ns()
                    if i >= args.warmup:
                        res[cl.name].append(t / 1e6)
            if proc.poll() is not None:
                sys.exit(f"aigw exited early with {proc.returncode}")
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill(); proc.wait()
    d, a = pct(res["direct"]), pct(res["aigw"])
    added = {k: a[k] - d[k] for k in d}
    if args.json:
        print(json.dumps({"command": cmdline, "requests": args.requests, "warmup": args.warmup,
                          "events": args.events, "gap_ms": args.gap_ms, "pin": args.pin,
                          "direct_ms": d, "aigw_ms": a, "added_ms": added}))
        return
    print(f"command: {cmdline}")
    print(f"requests={args.requests} per target (after {args.warmup} warmup), interleaved; "
          f"events={args.events} gap_ms={args.gap_ms} pin={args.pin or 'no'}")
    print(f"{'TTFT ms':<10}{'p50':>9}{'p90':>9}{'p99':>9}")
    for name, r in (("direct", d), ("via aigw", a), ("added", added)):
        print(f"{name:<10}" + "".join(f"{r[k]:9.3f}" for k in ("p50", "p90", "p99")))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
