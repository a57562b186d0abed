"""The benchmark messages: their text (``<publisher>:<seq>:<send time ns>:`` padded
with dots) and the schedule of their sends (at once, or paced at a rate)."""
from __future__ import annotations

import asyncio
import time


def make_text(pub: int, seq: int, send_ns: int, chars: int) -> str:
    """`<pub>:<seq>:<send ns>:` padded with dots to `chars` characters."""
    return f"{pub}:{seq}:{send_ns}:".ljust(chars, ".")


def parse_text(text: str) -> tuple[int, int, int]:
    """(publisher id, seq, send time in Unix ns) of a make_text text; ValueError if not one."""
    pub, seq, send_ns, _ = text.split(":", 3)
    return int(pub), int(seq), int(send_ns)


async def sleep_until_ns(t_ns: int) -> None:
    """Sleep until the wall clock reads `t_ns` (Unix ns); return at once if it has."""
    delay = (t_ns - time.time_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def schedule(n: int, rate: float | None):
    """Yield `(seq, scheduled_ns)` for seq 0..n-1. With `rate` (messages per second) each
    seq comes at its scheduled time, open loop (scheduled_ns = that Unix ns time, which
    the message carries, so a publisher that falls behind shows as latency); without,
    at once, with scheduled_ns None (the caller stamps the send time itself)."""
    t0 = time.time_ns()
    for seq in range(n):
        if not rate:
            yield seq, None
            continue
        scheduled = t0 + int(seq * 1e9 / rate)
        await sleep_until_ns(scheduled)
        yield seq, scheduled
