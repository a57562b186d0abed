"""The worker's batching: events grouped by user (arrival order kept per user), one
channel-layer message per user, acks after the hand-over, naks when the layer fails."""
import asyncio
from dataclasses import dataclass

from messaging import metrics
from messaging.fanout.worker import group_by_user, hand_over, hand_over_forever
from messaging.protocol.events import subject_for, user_of_subject


@dataclass
class Msg:
    subject: str
    data: bytes


def test_group_by_user_keeps_arrival_order_within_each_user():
    msgs = [Msg(subject_for(u), d) for u, d in [("a", b"1"), ("b", b"2"), ("a", b"3"), ("c", b"4"), ("a", b"5")]]
    grouped = group_by_user(msgs)
    assert list(grouped) == ["a", "b", "c"]
    assert [m.data for m in grouped["a"]] == [b"1", b"3", b"5"]
    assert [m.data for m in grouped["b"]] == [b"2"]
    assert sum(len(v) for v in grouped.values()) == len(msgs)


def test_user_of_subject_inverts_subject_for():
    for user in ("a", "g82p0dd24smsmtk", "user_with_underscore-1"):
        assert user_of_subject(subject_for(user)) == user


class FakeMsg:
    """A JetStream message as the worker sees it: subject, data, ack/nak, ack subject."""

    def __init__(self, user: str, data: bytes, delivered: int = 1, fail_acks: bool = False):
        self.subject, self.data = subject_for(user), data
        self.reply = f"$JS.ACK.EVENTS.relay.{delivered}.7.7.1795974819853975600.0"
        self.fail_acks = fail_acks
        self.acked = self.naked = False

    async def ack(self):
        if self.fail_acks:
            raise ConnectionError("NATS connection closed")
        self.acked = True

    async def nak(self, delay=None):
        if self.fail_acks:
            raise ConnectionError("NATS connection closed")
        self.naked = True


async def ack_each(msgs):
    for msg in msgs:
        await msg.ack()


class FakeLayer:
    def __init__(self, fail: bool = False):
        self.fail, self.sent = fail, []

    async def group_send_many(self, sends):
        if self.fail:
            raise ConnectionError("Redis down")
        self.sent.extend(sends)


async def test_hand_over_sends_one_message_per_user_then_acks_everything():
    msgs = [FakeMsg("a", b"1"), FakeMsg("b", b"2"), FakeMsg("a", b"3")]
    layer = FakeLayer()
    await hand_over(layer, msgs, ack_each)
    assert layer.sent == [
        ("user.a", {"type": "relay.events", "data": [b"1", b"3"]}),
        ("user.b", {"type": "relay.events", "data": [b"2"]}),
    ]
    assert all(m.acked and not m.naked for m in msgs)


async def test_hand_over_naks_the_batch_when_the_layer_fails():
    msgs = [FakeMsg("a", b"1"), FakeMsg("b", b"2")]
    await hand_over(FakeLayer(fail=True), msgs, ack_each)
    assert all(m.naked and not m.acked for m in msgs)


def worker_sample(name: str) -> float:
    return metrics.WORKER.get_sample_value(name) or 0.0


async def test_redeliveries_are_counted_when_received_even_if_the_hand_over_fails():
    """While the layer fails, redelivered events are nak'ed again and again: each receipt
    counts, or the counter would stay flat through the outage it should show."""
    msgs = [FakeMsg("a", b"1", delivered=2), FakeMsg("b", b"2"), FakeMsg("a", b"3", delivered=5)]
    redeliveries, handled = worker_sample("relay_worker_redeliveries_total"), worker_sample("relay_worker_events_total")
    await hand_over(FakeLayer(fail=True), msgs, ack_each)
    assert all(m.naked for m in msgs)
    assert worker_sample("relay_worker_redeliveries_total") - redeliveries == 2
    assert worker_sample("relay_worker_events_total") - handled == 0
    await hand_over(FakeLayer(), msgs, ack_each)
    assert worker_sample("relay_worker_redeliveries_total") - redeliveries == 4
    assert worker_sample("relay_worker_events_total") - handled == 3


async def test_the_worker_goes_on_after_a_batch_whose_acks_failed():
    """A batch that cannot be acked (NATS gone) is left to JetStream's redelivery; the
    next batch is still handed over."""
    layer, queue = FakeLayer(), asyncio.Queue()
    queue.put_nowait(FakeMsg("a", b"lost-ack", fail_acks=True))
    worker = asyncio.create_task(hand_over_forever(layer, queue, ack_each))
    await asyncio.wait_for(queue.join(), 5)
    later = FakeMsg("b", b"next")
    queue.put_nowait(later)
    await asyncio.wait_for(queue.join(), 5)
    assert later.acked and ("user.b", {"type": "relay.events", "data": [b"next"]}) in layer.sent
    assert not worker.done()
    worker.cancel()


def test_delivery_count_reads_both_ack_subject_forms():
    from messaging.fanout.worker import delivery_count
    assert delivery_count("$JS.ACK.EVENTS.relay.1.12.7.1795974819853975600.0") == 1
    assert delivery_count("$JS.ACK.EVENTS.relay.3.12.9.1795974819853975600.4") == 3
    # with a JetStream domain and account hash, with and without the trailing token
    assert delivery_count("$JS.ACK.hub.ACCHASH.EVENTS.relay.2.12.9.1795974819853975600.0") == 2
    assert delivery_count("$JS.ACK.hub.ACCHASH.EVENTS.relay.5.12.9.1795974819853975600.0.xyz") == 5
