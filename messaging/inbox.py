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
"""
import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


async def dispatch_in_arrival_order(
    sources: list[Callable[[], Awaitable[dict]]], dispatch: Callable[[dict], Awaitable[None]]
) -> None:
    """Await `dispatch(message)` for every message the `sources` return, one at a time,
    in the order they arrived; runs until dispatch (or a source) raises.

    A source's exception (other than cancellation) is raised here, in order, like
    await_many_dispatch does; dispatch's exceptions (StopConsumer) propagate. On the
    way out the pumps are cancelled and awaited, so a channel-layer receive cleans up
    its subscription as it does under await_many_dispatch.
    """
    loop = asyncio.get_running_loop()
    inbox: deque = deque()  # (message, error) in arrival order; lighter than an asyncio.Queue
    wakeup: list[asyncio.Future] = []  # the dispatching loop's, while it waits for the inbox

    def arrived(item: tuple) -> None:
        inbox.append(item)
        if wakeup and not wakeup[0].done():
            wakeup[0].set_result(None)

    async def pump(receive):
        try:
            while True:
                arrived((await receive(), None))
        except Exception as exc:  # handed to the dispatching loop, which raises it
            arrived((None, exc))

    pumps = [asyncio.create_task(pump(receive)) for receive in sources]
    try:
        while True:
            if not inbox:
                wakeup.append(loop.create_future())
                try:
                    await wakeup[0]
                finally:
                    wakeup.clear()
            message, error = inbox.popleft()
            if error is not None:
                raise error
            await dispatch(message)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
