#!/usr/bin/env python3
"""Usage: scripts/h2-idle-conns.py [--tls] PORT GATEWAY_PID N

Opens N HTTP/2 connections by prior knowledge (h2c), or over TLS with ALPN h2 (--tls, the
certificate is not checked), to a gateway, makes one GET / on each,
answers the server's SETTINGS, then holds them idle for 4 s and reports the gateway's RSS
growth per connection (VmRSS delta / N). Frames are written by hand (HPACK: indexed
:method GET, :scheme http, :path /, and a literal :authority), so no HTTP/2 library is needed."""
import asyncio, ssl, sys, struct
from idle_memory import hold_idle
def frame(t, flags, sid, payload): return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def lit(name, value):  # literal without indexing, new name
    def s(b): return bytes([len(b)]) + b
    return b"\x00" + s(name) + s(value)
block = b"\x82" + b"\x86" + b"\x84" + lit(b":authority", b"x")  # GET, http, /
def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx
TLS = tls_context() if "--tls" in sys.argv else None
async def one(port, held):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=TLS)
    if TLS and w.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
        raise SystemExit("the server did not choose h2 by ALPN")
    w.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 5, 1, block))
    await w.drain()
    got = b""; done = False
    while not done:
        d = await r.read(65536)
        if not d: raise SystemExit("closed")
        got += d
        i = 0
        while i + 9 <= len(got):
            ln = int.from_bytes(got[i:i+3], "big"); t = got[i+3]; fl = got[i+4]; sid = int.from_bytes(got[i+5:i+9], "big") & 0x7fffffff
            if i + 9 + ln > len(got): break
            if t == 4 and not fl & 1: w.write(frame(4, 1, 0, b""))
            if sid == 1 and fl & 1 and t in (0, 1): done = True
            i += 9 + ln
        got = got[i:]
    await w.drain()
    held.append((r, w))
async def main():
    args = [a for a in sys.argv[1:] if a != "--tls"]
    port, pid, n = int(args[0]), int(args[1]), int(args[2])
    held, _, _, per_conn = await hold_idle(pid, n, lambda held: one(port, held))
    print(f"{'h2 over TLS' if TLS else 'h2c'} connections={len(held)} per_conn_bytes={per_conn:.0f}")
asyncio.run(main())
