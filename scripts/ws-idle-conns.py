#!/usr/bin/env python3
"""Usage: scripts/ws-idle-conns.py BACKEND_PORT GATEWAY_PORT GATEWAY_PID N

Memory per idle upgraded connection (a WebSocket after its 101). Listens on BACKEND_PORT as the
upstream (answers every request 101 Switching Protocols, then echoes bytes), opens N
connections through the gateway on GATEWAY_PORT, upgrades each, echoes 5 bytes once, holds
them all idle for 4 s and reports the gateway's RSS growth per connection (VmRSS delta / N).
The gateway's route for `/` must lead to 127.0.0.1:BACKEND_PORT."""
import asyncio, os, sys

from idle_memory import hold_idle

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

async def backend(r, w):
    await r.readuntil(b"\r\n\r\n")
    w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    while data := await r.read(65536):
        w.write(data)
        await w.drain()

async def one(port, held):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(UPGRADE)
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"no upgrade: {head!r}")
    w.write(b"hello")
    await r.readexactly(5)
    held.append((r, w))

async def main():
    be_port, port, pid, n = map(int, sys.argv[1:5])
    server = await asyncio.start_server(backend, "127.0.0.1", be_port, backlog=4096)
    held, _, _, per_conn = await hold_idle(pid, n, lambda held: one(port, held))
    print(f"upgraded connections={len(held)} per_conn_bytes={per_conn:.0f}", flush=True)
    os._exit(0)  # the echo tasks would only be cancelled one by one

asyncio.run(main())
