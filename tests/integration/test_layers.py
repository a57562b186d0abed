"""messaging.layers.RelayChannelLayer against a real Redis: group_send_many delivers to
group members exactly what group_send does, through channels_redis' own receive path."""
import asyncio

import pytest
import redis.asyncio as aioredis

from messaging.layers import RelayChannelLayer


@pytest.fixture
async def layers(redis_server):
    """A sending layer (a worker) and a receiving one (a daphne process), separate
    instances like separate processes, on the session Redis."""
    sender, receiver = RelayChannelLayer(hosts=[redis_server.url]), RelayChannelLayer(hosts=[redis_server.url])
    yield sender, receiver
    await sender.flush()
    await receiver.flush()


async def receive(layer, channel):
    return await asyncio.wait_for(layer.receive(channel), 10)


async def test_group_send_many_reaches_each_groups_members_in_order(layers):
    sender, receiver = layers
    alice1, alice2, bob = [await receiver.new_channel() for _ in range(3)]
    await receiver.group_add("user.alice", alice1)
    await receiver.group_add("user.alice", alice2)
    await receiver.group_add("user.bob", bob)
    await sender.group_send_many([
        ("user.alice", {"type": "relay.events", "data": [b"a1", b"a2"]}),
        ("user.bob", {"type": "relay.events", "data": [b"b1"]}),
        ("user.alice", {"type": "relay.events", "data": [b"a3"]}),
    ])
    for channel in (alice1, alice2):
        assert await receive(receiver, channel) == {"type": "relay.events", "data": [b"a1", b"a2"]}
        assert await receive(receiver, channel) == {"type": "relay.events", "data": [b"a3"]}
    assert await receive(receiver, bob) == {"type": "relay.events", "data": [b"b1"]}
    await sender.group_send("user.bob", {"type": "marker"})  # nothing else was queued for bob
    assert await receive(receiver, bob) == {"type": "marker"}


async def test_group_send_many_uses_the_redis_channels_of_group_send(layers, redis_server):
    """Same Redis channel and bytes as group_send, so daphne processes that run plain
    channels_redis (an older relay during an upgrade) receive the batches too."""
    sender, _ = layers
    client = aioredis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe("asgi__group__user.carol")
    await pubsub.get_message(timeout=5)  # the subscribe confirmation
    message = {"type": "relay.events", "data": [b"x"]}
    await sender.group_send_many([("user.carol", message)])
    await sender.group_send("user.carol", message)
    got = []
    while len(got) < 2:
        item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert item is not None, "a PUBLISH did not arrive"
        got.append(item["data"])
    assert got[0] == got[1] == sender.serialize(message)
    await pubsub.aclose()
    await client.aclose()


async def test_group_send_many_raises_when_redis_is_unreachable():
    layer = RelayChannelLayer(hosts=["redis://127.0.0.1:1/0"])
    with pytest.raises((aioredis.ConnectionError, OSError)):
        await layer.group_send_many([("user.alice", {"type": "relay.events", "data": []})])
    await layer.flush()
