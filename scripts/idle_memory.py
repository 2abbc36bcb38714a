"""Shared by the idle-connection memory scripts (idle-conns.py, h2-idle-conns.py,
ws-idle-conns.py): open N connections in batches, let them go quiet, and report how much a
process's resident memory grew per connection."""
import asyncio


def rss_kib(pid):
    """VmRSS of process `pid`, in KiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


async def hold_idle(pid, n, open_one, batch=250, quiet=4):
    """Runs `open_one(held)` n times, `batch` at a time (each appends what keeps its connection
    open to `held`), waits `quiet` seconds (past aigw's 2 s hot wait), and returns
    (held, rss_before_kib, rss_after_kib, bytes_per_connection)."""
    before = rss_kib(pid)
    held = []
    for start in range(0, n, batch):
        await asyncio.gather(*(open_one(held) for _ in range(start, min(n, start + batch))))
    await asyncio.sleep(quiet)
    after = rss_kib(pid)
    return held, before, after, (after - before) * 1024 / len(held)
