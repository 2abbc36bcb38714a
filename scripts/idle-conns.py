#!/usr/bin/env python3
"""Usage: scripts/idle-conns.py PORT GATEWAY_PID N [tls]

Opens N keep-alive connections to a gateway (over TLS with `tls`, certificate not checked),
makes one request on each, then holds them idle and reports the gateway's RSS growth per
connection (VmRSS delta / N)."""
import asyncio, os, ssl, sys, time

from idle_memory import hold_idle

TLS = None
if len(sys.argv) > 4 and sys.argv[4] == "tls":
    TLS = ssl.create_default_context()
    TLS.check_hostname = False
    TLS.verify_mode = ssl.CERT_NONE

async def one(host, port, held):
    r, w = await asyncio.open_connection(host, port, ssl=TLS)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    await r.readexactly(length)
    held.append((r, w))

async def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    held, before, after, per_conn = await hold_idle(pid, n, lambda held: one("127.0.0.1", port, held), batch=500)
    print(f"connections={len(held)} rss_before_kib={before} rss_after_kib={after} per_conn_bytes={per_conn:.0f}")

asyncio.run(main())
