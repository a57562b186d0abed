"""Replies of one connection, in the order of its frames, while publishes overlap.

A `publish` is stored and handed to NATS while its frame is dispatched, but its `ack`
may only go out once JetStream acked the fan-out (a few ms). Waiting for that in the
dispatch would hold every later frame of the connection; instead the wait is deferred
here, the connection takes its next frame, and the replies still leave in frame order.
"""
import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class OrderedReplies:
    """Deferred replies of one connection, sent in the order they were deferred.

    `send` is the connection's async frame sender (a dict -> None). At most `limit`
    replies wait at once; `defer` waits for the oldest beyond that (backpressure on a
    client that publishes faster than JetStream acks).
    """

    def __init__(self, send: Callable[[dict], Awaitable[None]], limit: int):
        self._send = send
        self._pending: list[asyncio.Task] = []  # a list: an idle connection's is 56 bytes, a deque's 600
        self.limit = limit

    def __len__(self) -> int:
        """How many deferred replies are not sent yet."""
        return len(self._pending)

    async def defer(self, frame: Awaitable[dict]) -> None:
        """Send the frame `frame` resolves to (it must not raise: map errors to an
        error frame) once it is ready and every reply deferred before it was sent."""
        ready = asyncio.ensure_future(frame)  # runs now, also while waiting for room
        try:
            while len(self._pending) >= self.limit:
                await asyncio.wait([self._pending[0]])
        except asyncio.CancelledError:
            ready.cancel()
            raise
        previous = self._pending[-1] if self._pending else None
        task = asyncio.create_task(self._send_in_turn(ready, previous))
        self._pending.append(task)
        task.add_done_callback(self._pending.remove)
        task.add_done_callback(lambda _: ready.cancel())  # when the send was cancelled first

    async def _send_in_turn(self, frame: asyncio.Future, previous: asyncio.Task | None) -> None:
        ready = await frame
        if previous is not None:
            await asyncio.wait([previous])  # its outcome does not matter, only that it is over
        try:
            await self._send(ready)
        except Exception:  # the connection is closing: the reply has nobody to go to
            log.debug("deferred reply not sent", exc_info=True)

    async def drain(self) -> None:
        """Wait until every deferred reply was sent, so a reply sent next stays in order."""
        if self._pending:
            await asyncio.wait([self._pending[-1]])  # each one waits for the one before it

    def cancel(self) -> None:
        """Drop the replies still waiting (the connection closed)."""
        for task in list(self._pending):
            task.cancel()
