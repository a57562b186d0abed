"""messaging.deliver.replies.OrderedReplies: deferred replies leave in the order they were
deferred, whatever order they become ready in; at most `limit` wait at once; drain
puts a later reply behind them; a failed send does not hold the others."""
import asyncio

from messaging.deliver.replies import OrderedReplies


class Connection:
    """Records what is sent; `fail_on` makes sending that frame raise."""

    def __init__(self, fail_on=None):
        self.sent = []
        self.fail_on = fail_on

    async def send(self, frame):
        if frame == self.fail_on:
            raise ConnectionError("closing")
        self.sent.append(frame)


async def ready_when(event: asyncio.Event, frame):
    await event.wait()
    return frame


async def settle():
    for _ in range(10):
        await asyncio.sleep(0)


async def test_replies_leave_in_deferral_order_when_later_ones_are_ready_first():
    conn = Connection()
    replies = OrderedReplies(conn.send, limit=8)
    gates = [asyncio.Event() for _ in range(3)]
    for i, gate in enumerate(gates):
        await replies.defer(ready_when(gate, f"ack{i}"))
    gates[2].set()
    gates[1].set()
    await settle()
    assert conn.sent == []  # ack0 is not ready: nothing may overtake it
    gates[0].set()
    await replies.drain()
    assert conn.sent == ["ack0", "ack1", "ack2"]
    assert len(replies) == 0


async def test_drain_waits_for_every_deferred_reply():
    conn = Connection()
    replies = OrderedReplies(conn.send, limit=8)
    gate = asyncio.Event()
    await replies.defer(ready_when(gate, "ack"))
    drained = asyncio.create_task(replies.drain())
    await settle()
    assert not drained.done()
    gate.set()
    await drained
    await conn.send("pong")  # what a connection sends after draining
    assert conn.sent == ["ack", "pong"]


async def test_defer_waits_while_limit_replies_are_pending():
    conn = Connection()
    replies = OrderedReplies(conn.send, limit=2)
    gates = [asyncio.Event() for _ in range(3)]
    await replies.defer(ready_when(gates[0], "ack0"))
    await replies.defer(ready_when(gates[1], "ack1"))
    third = asyncio.create_task(replies.defer(ready_when(gates[2], "ack2")))
    await settle()
    assert not third.done() and len(replies) == 2
    gates[0].set()
    await third
    gates[1].set()
    gates[2].set()
    await replies.drain()
    assert conn.sent == ["ack0", "ack1", "ack2"]


async def test_a_reply_that_cannot_be_sent_does_not_hold_the_next():
    conn = Connection(fail_on="ack0")
    replies = OrderedReplies(conn.send, limit=8)
    await replies.defer(asyncio.sleep(0, "ack0"))
    await replies.defer(asyncio.sleep(0, "ack1"))
    await replies.drain()
    assert conn.sent == ["ack1"]


async def test_cancel_drops_the_replies_still_waiting():
    conn = Connection()
    replies = OrderedReplies(conn.send, limit=8)
    never = asyncio.Event()
    await replies.defer(ready_when(never, "ack0"))
    await replies.defer(asyncio.sleep(0, "ack1"))
    replies.cancel()
    await settle()
    assert conn.sent == [] and len(replies) == 0


async def test_a_reply_cancelled_while_waiting_for_room_is_dropped_with_its_frame():
    conn = Connection()
    replies = OrderedReplies(conn.send, limit=1)
    gate, never = asyncio.Event(), asyncio.Event()
    await replies.defer(ready_when(gate, "ack0"))
    second_frame = asyncio.ensure_future(ready_when(never, "ack1"))
    waiting = asyncio.create_task(replies.defer(second_frame))
    await settle()
    waiting.cancel()
    await settle()
    assert second_frame.cancelled()
    gate.set()
    await replies.drain()
    assert conn.sent == ["ack0"]
