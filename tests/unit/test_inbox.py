"""messaging.deliver.inbox.Inbox.run: what Channels' await_many_dispatch
promises a consumer (one dispatch at a time, arrival order across sources, errors and
StopConsumer propagate, receives cancelled on the way out)."""
import asyncio

import pytest
from channels.exceptions import StopConsumer

from messaging.deliver.inbox import Inbox


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

    loop = asyncio.create_task(Inbox().run([frames.get, events.get], dispatch))
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
        await Inbox().run([frames, take_event], dispatch)
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
        await Inbox().run([one_frame, waits_forever], dispatch)
    assert cancelled == ["layer receive"]


async def test_messages_put_straight_in_keep_their_place_among_those_of_sources():
    frames = asyncio.Queue()
    inbox = Inbox()
    dispatched = []

    async def dispatch(message):
        dispatched.append(message)
        if message == "stop":
            raise StopConsumer

    loop = asyncio.create_task(inbox.run([frames.get], dispatch))
    for message in ["f1", "e1", "e2", "f2", "e3", "stop"]:
        if message.startswith("e"):
            inbox.put(message)  # as the channel layer does, from its own receive loop
        else:
            frames.put_nowait(message)
            for _ in range(3):  # let the pump take it, so arrival order is the order of puts
                await asyncio.sleep(0)
    with pytest.raises(StopConsumer):
        await loop
    assert dispatched == ["f1", "e1", "e2", "f2", "e3", "stop"]


async def test_a_failure_put_in_is_raised_after_what_arrived_before_it():
    inbox = Inbox()
    dispatched = []

    async def dispatch(message):
        dispatched.append(message)

    inbox.put("e1")
    inbox.fail(ValueError("unreadable"))
    inbox.put("e2")
    with pytest.raises(ValueError, match="unreadable"):
        await inbox.run([], dispatch)
    assert dispatched == ["e1"]
