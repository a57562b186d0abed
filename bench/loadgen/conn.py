"""Client connections in general: the base recording deliveries, a reader task over a
stream of items (WebSocket frames, SSE lines), and opening or closing many at once."""
from __future__ import annotations

import asyncio
import time


class Conn:
    """One client connection: ``deliveries`` = [(receive ns, raw frame)], ``pubs`` = the
    publisher ids whose messages it must receive."""

    def __init__(self) -> None:
        self.deliveries: list = []
        self.pubs: list[int] = []
        self.closed = False

    def is_closed(self) -> bool:
        """True when the server closed (or the network dropped) this connection."""
        return self.closed

    async def close(self) -> None:
        """Close the connection (nothing to close for the base: a publisher over HTTP)."""


class StreamConn(Conn):
    """A connection whose incoming items (WebSocket frames, SSE lines) a reader task
    records as deliveries, those that `is_delivery(item)` accepts, until the stream ends."""

    def __init__(self, items, is_delivery=lambda item: True) -> None:
        super().__init__()
        self.task = asyncio.create_task(self._reader(items, is_delivery))

    async def _reader(self, items, is_delivery) -> None:
        try:
            async for item in items:
                if is_delivery(item):
                    self.deliveries.append((time.time_ns(), item))
        except Exception:  # noqa: BLE001 - connection closed or broken
            pass
        finally:
            self.closed = True


async def bounded(coros, limit: int) -> list:
    """``gather`` with at most ``limit`` coroutines running at once (results in order)."""
    sem = asyncio.Semaphore(limit)

    async def run(coro):
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def close_all(conns, limit: int = 200) -> None:
    """Close every connection, `limit` at a time, each within 10 s, ignoring errors."""
    async def close(c):
        try:
            await asyncio.wait_for(c.close(), 10)
        except Exception:  # noqa: BLE001
            pass

    await bounded([close(c) for c in conns], limit)
