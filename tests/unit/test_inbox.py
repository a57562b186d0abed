"""messaging.inbox.dispatch_in_arrival_order: what Channels' await_many_dispatch
promises a consumer (one dispatch at a time, arrival order across sources, errors and
StopConsumer propagate, receives cancelled on the way out)."""
import asyncio

import pytest
from channels.exceptions import StopConsumer

from messaging.inbox import dispatch_in_arrival_order


async def test_messages_of_two_sources_are_dispatched_in_arrival_order_one_at_a_time():
    frames, events = asyncio.Queue(), asyncio.Queue()
    dispatched, running = [], []
    release = asyncio.Event()

    async def dispatch(message):
        running.append(message)
        assert len(running) == 1, f"{running} dispatched at the same time"
        if message == "f1":
            await release.wait()  # everything below arrives while f1 is being dispatched
        dispatched.append(message)
        running.remove(message)
        if message == "stop":
            raise StopConsumer

    loop = asyncio.create_task(dispatch_in_arrival_order([frames.get, events.get], dispatch))
    frames.put_nowait("f1")
    while running != ["f1"]:
        await asyncio.sleep(0)
    for queue, message in [(events, "e1"), (frames, "f2"), (events, "e2"), (events, "e3"), (frames, "stop")]:
        queue.put_nowait(message)
        for _ in range(3):  # let the pump take it, so arrival order is the order of puts
            await asyncio.sleep(0)
    release.set()
    with pytest.raises(StopConsumer):
        await loop
    assert dispatched == ["f1", "e1", "f2", "e2", "e3", "stop"]


async def test_a_failing_source_raises_after_what_arrived_before_it():
    events = asyncio.Queue()
    dispatched = []

    async def frames():
        await events.join()  # fail once the event before has been received
        raise ConnectionError("receive failed")

    async def take_event():
        message = await events.get()
        events.task_done()
        return message

    async def dispatch(message):
        dispatched.append(message)

    events.put_nowait("e1")
    with pytest.raises(ConnectionError, match="receive failed"):
        await dispatch_in_arrival_order([frames, take_event], dispatch)
    assert dispatched == ["e1"]


async def test_receives_still_waiting_are_cancelled_when_dispatch_stops():
    cancelled = []

    async def waits_forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("layer receive")  # channels_redis unsubscribes here
            raise

    async def one_frame():
        if not cancelled and not hasattr(one_frame, "sent"):
            one_frame.sent = True
            return {"type": "websocket.disconnect"}
        await asyncio.Event().wait()

    async def dispatch(message):
        raise StopConsumer

    with pytest.raises(StopConsumer):
        await dispatch_in_arrival_order([one_frame, waits_forever], dispatch)
    assert cancelled == ["layer receive"]
