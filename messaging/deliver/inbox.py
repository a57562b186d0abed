"""One consumer's inbox: messages from several sources, dispatched one at a time in
arrival order.

A drop-in for channels.utils.await_many_dispatch, which a Channels consumer uses to
wait on its ASGI `receive` and its channel-layer receive together. That one waits with
asyncio.wait on a fresh task per message (a waiter, done-callbacks on every task, a
new task for the next receive); for every live message a connection delivers, that was
a measured share of daphne's CPU (docs/performance.md). Here each source has one
long-lived pump task that appends what it receives to one deque, and the dispatching
loop takes from that deque, waiting on one future when it is empty (an asyncio.Queue
would add about 3 KiB to every idle connection). The same one-at-a-time dispatch in
fewer steps, and in the order messages arrived across sources (after a long dispatch,
await_many_dispatch takes the sources that became ready in list order, frames first).

A producer that runs on the same event loop can also `put` messages straight in,
without a source to await (overrides/channels_redis_layer.py hands channel-layer messages over that way).
"""
import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class Inbox:
    """Messages (and source errors) in arrival order, dispatched one at a time by `run`."""

    __slots__ = ("_items", "_wakeup")

    def __init__(self):
        self._items: deque = deque()  # (message, error); lighter than an asyncio.Queue
        self._wakeup: asyncio.Future | None = None  # run()'s, while it waits for an item

    def put(self, message: dict) -> None:
        """Append `message`; run() dispatches it after everything that arrived before."""
        self._arrived((message, None))

    def fail(self, error: Exception) -> None:
        """Make run() raise `error` once everything that arrived before is dispatched."""
        self._arrived((None, error))

    def _arrived(self, item: tuple) -> None:
        self._items.append(item)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(
        self, sources: list[Callable[[], Awaitable[dict]]], dispatch: Callable[[dict], Awaitable[None]]
    ) -> None:
        """Await `dispatch(message)` for every message put here or returned by one of the
        `sources`, one at a time, in the order they arrived; runs until dispatch (or a
        source) raises.

        A source's exception (other than cancellation) is raised here, in order, like
        await_many_dispatch does; dispatch's exceptions (StopConsumer) propagate. On the
        way out the pumps are cancelled and awaited, so a channel-layer receive cleans up
        its subscription as it does under await_many_dispatch.
        """
        async def pump(receive):
            try:
                while True:
                    self.put(await receive())
            except Exception as exc:  # handed to the dispatching loop, which raises it
                self.fail(exc)

        loop = asyncio.get_running_loop()
        pumps = [asyncio.create_task(pump(receive)) for receive in sources]
        items = self._items
        try:
            while True:
                if not items:
                    self._wakeup = loop.create_future()
                    try:
                        await self._wakeup
                    finally:
                        self._wakeup = None
                message, error = items.popleft()
                if error is not None:
                    raise error
                await dispatch(message)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
