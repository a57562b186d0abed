"""messaging.publish.jetstream.PipelinedPublisher against a real nats-server: a batch
resolves once JetStream stored all of it, in order behind earlier batches; a refusal or
a subject no stream takes fails the batch; acks of a batch nobody waits for any more
are ignored."""
import asyncio
import uuid

import nats
import pytest
from nats.js import api

from messaging.publish.jetstream import JetStreamRefused, PipelinedPublisher


@pytest.fixture
async def stream(nats_server):
    """(nc, js, subject prefix) with a fresh stream on `<prefix>.>`, removed afterwards."""
    prefix = f"pp{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name=prefix.upper(), subjects=[f"{prefix}.>"]))
    yield nc, js, prefix
    await js.delete_stream(prefix.upper())
    await nc.close()


async def stored(js, prefix) -> list[tuple[str, bytes]]:
    info = await js.stream_info(prefix.upper())
    return [(m.subject, m.data) for m in
            [await js.get_msg(prefix.upper(), seq) for seq in range(1, info.state.last_seq + 1)]]


async def test_batches_resolve_once_stored_in_publish_order(stream):
    nc, js, prefix = stream
    publisher = PipelinedPublisher(nc)
    first = await publisher.publish([f"{prefix}.u{i}" for i in range(50)], b"m1")
    second = await publisher.publish([f"{prefix}.u{i}" for i in range(50)], b"m2")
    assert await asyncio.wait_for(first, 10) is None
    assert await asyncio.wait_for(second, 10) is None
    assert await stored(js, prefix) == (
        [(f"{prefix}.u{i}", b"m1") for i in range(50)] + [(f"{prefix}.u{i}", b"m2") for i in range(50)])


async def test_an_empty_batch_is_done_at_once(stream):
    nc, _, _ = stream
    assert (await PipelinedPublisher(nc).publish([], b"x")).result() is None


async def test_a_subject_without_a_stream_fails_the_batch(stream):
    nc, js, prefix = stream
    publisher = PipelinedPublisher(nc)
    acked = await publisher.publish([f"{prefix}.a", f"no{prefix}.b"], b"x")
    with pytest.raises(JetStreamRefused, match="no responders"):
        await asyncio.wait_for(acked, 10)
    assert await stored(js, prefix) == [(f"{prefix}.a", b"x")]


async def test_a_refused_message_fails_the_batch_with_the_servers_reason(stream):
    nc, js, prefix = stream
    await js.update_stream(api.StreamConfig(name=prefix.upper(), subjects=[f"{prefix}.>"], max_msgs=2,
                                            discard=api.DiscardPolicy.NEW))
    publisher = PipelinedPublisher(nc)
    acked = await publisher.publish([f"{prefix}.a", f"{prefix}.b", f"{prefix}.c"], b"x")
    with pytest.raises(JetStreamRefused, match="maximum messages exceeded"):
        await asyncio.wait_for(acked, 10)
    assert await stored(js, prefix) == [(f"{prefix}.a", b"x"), (f"{prefix}.b", b"x")]


async def test_acks_of_a_batch_nobody_waits_for_are_ignored(stream):
    nc, js, prefix = stream
    publisher = PipelinedPublisher(nc)
    abandoned = await publisher.publish([f"{prefix}.u{i}" for i in range(20)], b"old")
    abandoned.cancel()  # as asyncio.wait_for does on a timeout
    acked = await publisher.publish([f"{prefix}.v"], b"new")
    assert await asyncio.wait_for(acked, 10) is None
    assert len(await stored(js, prefix)) == 21
    assert len(publisher) == 0


async def test_a_batch_the_connection_cannot_take_raises_and_is_forgotten(nats_server):
    prefix = f"pp{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().add_stream(api.StreamConfig(name=prefix.upper(), subjects=[f"{prefix}.>"]))
    publisher = PipelinedPublisher(nc)
    await asyncio.wait_for(await publisher.publish([f"{prefix}.a"], b"x"), 10)  # subscribed
    await nc.jetstream().delete_stream(prefix.upper())
    await nc.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await publisher.publish([f"{prefix}.a", f"{prefix}.b"], b"x")
    await asyncio.sleep(0)  # the future's done callbacks run on the next loop step
    assert len(publisher) == 0
