"""overrides.nats_batch against a real nats-server: many publishes as one command arrive
as nats-py's publish would send them, in order, behind earlier publishes; `ack_all`
acks JetStream messages (no redelivery); a closed connection raises and sends nothing."""
import asyncio
import uuid

import nats
import pytest
from nats.js import api

from overrides.nats_batch import ack_all, publish_many


@pytest.fixture
async def nc(nats_server):
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


async def collect(nc, subject: str, count: int) -> list:
    got, done = [], asyncio.Event()

    async def on_msg(msg):
        got.append((msg.subject, msg.reply, msg.data))
        if len(got) == count:
            done.set()

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    return got, done


async def test_publish_many_sends_each_subject_the_payload_and_reply_in_order(nc):
    prefix = f"nb{uuid.uuid4().hex[:8]}"
    payload = '{"text": "héllo \u2028 \U0010fffd", "pad": "%s"}'.encode() % (b"x" * 3000)
    got, done = await collect(nc, f"{prefix}.>", 101)
    await nc.publish(f"{prefix}.first", b"before")
    await nc.flush()  # the flusher is idle again: publish_many must kick it itself
    await publish_many(nc, [f"{prefix}.u{i}" for i in range(100)], payload, f"_INBOX.{prefix}.7")
    await publish_many(nc, [], payload, "unused")
    await asyncio.wait_for(done.wait(), 10)
    assert got == [(f"{prefix}.first", "", b"before")] + [
        (f"{prefix}.u{i}", f"_INBOX.{prefix}.7", payload) for i in range(100)]


async def test_ack_all_acks_every_message_so_none_is_delivered_again(nc):
    prefix = f"nb{uuid.uuid4().hex[:8]}"
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name=prefix.upper(), subjects=[f"{prefix}.>"]))
    try:
        for i in range(30):
            await js.publish(f"{prefix}.u{i % 3}", str(i).encode())
        sub = await js.pull_subscribe(f"{prefix}.>", durable="w", config=api.ConsumerConfig(ack_wait=1))
        msgs = await sub.fetch(30, timeout=5)
        assert [m.data for m in msgs] == [str(i).encode() for i in range(30)]
        await ack_all(nc, msgs)
        await nc.flush()
        info = await js.consumer_info(prefix.upper(), "w")
        assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == 30
        with pytest.raises(nats.errors.TimeoutError):  # past ack_wait: nothing comes again
            await sub.fetch(1, timeout=1.5)
    finally:
        await js.delete_stream(prefix.upper())


async def test_a_message_without_a_reply_subject_is_refused_before_anything_is_sent(nc):
    class Plain:
        reply = ""

    sent = nc.stats["out_msgs"]
    with pytest.raises(ValueError, match="reply subject"):
        await ack_all(nc, [Plain()])
    assert nc.stats["out_msgs"] == sent and nc.is_connected


async def test_a_closed_connection_raises_and_takes_nothing(nats_server):
    nc = await nats.connect(nats_server.url)
    await nc.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await publish_many(nc, ["a.b"], b"x", "r")
    assert nc._pending_data_size == 0


async def test_a_payload_over_the_servers_limit_raises(nc):
    with pytest.raises(nats.errors.MaxPayloadError):
        await publish_many(nc, ["a.b"], b"x" * (nc.max_payload + 1), "r")
    assert nc.is_connected
