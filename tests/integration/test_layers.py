"""overrides.channels_redis_layer.RelayChannelLayer against a real Redis: group_send_many delivers to
group members exactly what group_send does, through channels_redis' own receive path;
new_channel_into puts what a channel receives straight into an inbox."""
import asyncio
import contextlib
import logging

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from localservers import RedisServer
from messaging.deliver.inbox import Inbox
from overrides.channels_redis_layer import RelayChannelLayer


@pytest.fixture
async def layers(redis_server):
    """A sending layer (a worker) and a receiving one (a daphne process), separate
    instances like separate processes, on the session Redis, configured as settings.py
    configures them (RESP2)."""
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert hosts[0]["protocol"] == 2
    hosts = [{**hosts[0], "address": redis_server.url}]
    sender, receiver = RelayChannelLayer(hosts=hosts), RelayChannelLayer(hosts=hosts)
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


async def test_group_send_many_is_one_redis_command_per_batch(layers, redis_server):
    """A batch's PUBLISHes go to Redis as one command (lua/publish_many.lua), so the
    worker packs one command and reads one reply, not one per group."""
    sender, receiver = layers
    members = [await receiver.new_channel() for _ in range(3)]
    for i, channel in enumerate(members):
        await receiver.group_add(f"user.many{i}", channel)
    await sender.group_send_many([("user.many0", {"type": "relay.events", "data": [b"first"]})])
    client = aioredis.from_url(redis_server.url)
    before = await client.info("commandstats")
    await sender.group_send_many([(f"user.many{i}", {"type": "relay.events", "data": [b"%d" % i]}) for i in range(3)])
    after = await client.info("commandstats")
    await client.aclose()

    def calls(stats, command):
        return stats.get(f"cmdstat_{command}", {}).get("calls", 0)

    assert calls(after, "evalsha") - calls(before, "evalsha") == 1
    assert await receive(receiver, members[0]) == {"type": "relay.events", "data": [b"first"]}
    for i, channel in enumerate(members):
        assert await receive(receiver, channel) == {"type": "relay.events", "data": [b"%d" % i]}


async def test_group_send_many_raises_when_redis_is_unreachable():
    layer = RelayChannelLayer(hosts=["redis://127.0.0.1:1/0"])
    with pytest.raises((aioredis.ConnectionError, OSError)):
        await layer.group_send_many([("user.alice", {"type": "relay.events", "data": []})])
    await layer.flush()


class _Dispatched(Exception):
    """Ends Inbox.run after one dispatch, carrying the message."""


async def next_in(inbox, timeout=10):
    """The next message put into `inbox` (run() stops after the first dispatch)."""
    async def dispatch(message):
        raise _Dispatched(message)

    with pytest.raises(_Dispatched) as dispatched:
        await asyncio.wait_for(inbox.run([], dispatch), timeout)
    return dispatched.value.args[0]


async def test_new_channel_into_puts_its_own_and_its_groups_messages_into_the_inbox_in_order(layers):
    sender, receiver = layers
    inbox = Inbox()
    channel = await receiver.new_channel_into(inbox)
    await receiver.group_add("user.dave", channel)
    await sender.group_send_many([("user.dave", {"type": "relay.events", "data": [b"d1"]})])
    await sender.send(channel, {"type": "relay.catch_up"})
    await sender.group_send("user.dave", {"type": "relay.events", "data": [b"d2"]})
    assert await next_in(inbox) == {"type": "relay.events", "data": [b"d1"]}
    assert await next_in(inbox) == {"type": "relay.catch_up"}
    assert await next_in(inbox) == {"type": "relay.events", "data": [b"d2"]}


async def test_close_channel_unsubscribes_it_from_redis(layers, redis_server):
    _, receiver = layers
    client = aioredis.from_url(redis_server.url)
    channel = await receiver.new_channel_into(Inbox())
    assert (await client.pubsub_numsub(channel))[0][1] == 1
    await receiver.close_channel(channel)
    assert (await client.pubsub_numsub(channel))[0][1] == 0
    await receiver.close_channel(channel)  # a second close does nothing
    await client.aclose()


async def test_a_message_the_layer_cannot_read_fails_the_inbox_in_its_place(layers, redis_server):
    sender, receiver = layers
    inbox = Inbox()
    channel = await receiver.new_channel_into(inbox)
    client = aioredis.from_url(redis_server.url)
    await client.publish(channel, b"\xc1 not msgpack")
    await sender.send(channel, {"type": "after"})

    async def dispatch(message):
        raise AssertionError(f"dispatched {message}")

    with pytest.raises(Exception) as failure:
        await asyncio.wait_for(inbox.run([], dispatch), 10)
    assert not isinstance(failure.value, (AssertionError, asyncio.TimeoutError))
    await client.aclose()


async def test_a_batch_read_at_once_is_handed_over_without_a_get_message_per_message(layers, redis_server):
    """The receive loop drains what hiredis already read (layers._DrainingShard); fails
    when an upgrade of redis-py or channels_redis makes the drain find nothing."""
    sender, receiver = layers
    inbox = Inbox()
    channel = await receiver.new_channel_into(inbox)
    await receiver.group_add("user.erin", channel)
    pubsub = receiver._get_layer()._get_shard(channel)._pubsub
    calls = []
    get_message = pubsub.get_message

    async def counted(**kwargs):
        calls.append(1)
        return await get_message(**kwargs)

    pubsub.get_message = counted
    await sender.group_send_many([("user.erin", {"type": "relay.events", "data": [b"%d" % i]}) for i in range(200)])
    got = [await next_in(inbox) for _ in range(200)]
    assert got == [{"type": "relay.events", "data": [b"%d" % i]} for i in range(200)]
    assert len(calls) < 100, f"{len(calls)} get_message calls for 200 messages"


async def test_an_unsubscribe_confirmed_amid_messages_keeps_redis_py_state(layers):
    sender, receiver = layers
    inbox = Inbox()
    channel = await receiver.new_channel_into(inbox)
    other = await receiver.new_channel_into(Inbox())
    await receiver.group_add("user.frank", channel)
    batch = [("user.frank", {"type": "relay.events", "data": [b"%d" % i]}) for i in range(100)]
    await sender.group_send_many(batch)
    await receiver.close_channel(other)  # its confirmation arrives behind the batch
    await sender.group_send_many(batch)
    got = [await next_in(inbox) for _ in range(200)]
    assert got == [message for _, message in batch] * 2
    pubsub = receiver._get_layer()._get_shard(other)._pubsub
    assert other.encode() not in pubsub.channels and not pubsub.pending_unsubscribe_channels


async def test_channels_and_groups_closed_while_redis_is_down_are_not_subscribed_again(tmp_path, caplog):
    """Connections that close while Redis is down cannot unsubscribe; redis-py would
    subscribe their channels again when it reconnects, for the life of the process.
    The layer forgets them; the kept channel comes back. The
    receive loop reports the outage as warnings, not as errors with tracebacks."""
    own = RedisServer(tmp_path).start()
    layer = RelayChannelLayer(hosts=[{"address": own.url, "protocol": 2}])
    client = aioredis.from_url(own.url)
    try:
        kept = await layer.new_channel_into(Inbox())
        closed = [await layer.new_channel_into(Inbox()) for _ in range(3)]
        for channel in closed:
            await layer.group_add("user.gone", channel)
        own.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not [r for r in caplog.records if r.name == "overrides.channels_redis_layer"]:  # the receive loop saw it
            assert loop.time() < deadline, "the receive loop did not notice the outage"
            await asyncio.sleep(0.05)
        for channel in closed:  # as a session's release does, giving up on Redis errors
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                await layer.group_discard("user.gone", channel)
            with contextlib.suppress(aioredis.ConnectionError, OSError):
                await layer.close_channel(channel)
        own.start()
        deadline = loop.time() + 30
        while (await client.pubsub_numsub(kept))[0][1] == 0:  # the receive loop reconnected
            assert loop.time() < deadline, "the kept channel was not subscribed again"
            await asyncio.sleep(0.1)
        subscribed = {name.decode() for name in await client.pubsub_channels()}
        assert subscribed == {kept}
        assert [r.getMessage() for r in caplog.records if r.name == "overrides.channels_redis_layer" and r.levelno >= logging.ERROR] == []
    finally:
        await layer.flush()
        await client.aclose()
        own.stop()


async def test_inboxes_are_asked_to_catch_up_once_redis_is_back(tmp_path):
    """What is published while the layer resubscribes after an outage never reaches it
    (a CI run lost a live message that way); once it is back, every inbox gets
    relay.catch_up, so its connection reads the history."""
    own = RedisServer(tmp_path).start()
    layer = RelayChannelLayer(hosts=[{"address": own.url, "protocol": 2}])
    client = aioredis.from_url(own.url)
    inboxes = [Inbox(), Inbox()]
    try:
        channels = [await layer.new_channel_into(inbox) for inbox in inboxes]
        await layer.group_add("user.gina", channels[0])
        await layer.group_send("user.gina", {"type": "relay.events", "data": [b"before"]})
        assert await next_in(inboxes[0]) == {"type": "relay.events", "data": [b"before"]}
        own.stop()
        own.start()
        for inbox in inboxes:
            assert await next_in(inbox) == {"type": "relay.catch_up"}
        await layer.group_send("user.gina", {"type": "relay.events", "data": [b"after"]})
        assert await next_in(inboxes[0]) == {"type": "relay.events", "data": [b"after"]}
    finally:
        await layer.flush()
        await client.aclose()
        own.stop()


async def test_inboxes_are_asked_to_catch_up_after_any_receive_failure(layers, caplog):
    """Not only an outage: any error in the receive loop may have cost messages (such as
    redis-py's "read() called while another coroutine is already waiting", raised when
    connections close their channels during a reconnect). Once the loop reads
    again, every inbox gets relay.catch_up, and later messages flow as before."""
    sender, receiver = layers
    inbox = Inbox()
    channel = await receiver.new_channel_into(inbox)
    await receiver.group_add("user.hugo", channel)
    pubsub = receiver._get_layer()._get_shard(channel)._pubsub
    get_message = pubsub.get_message
    failed = []

    async def failing_once(**kwargs):
        if not failed:
            failed.append(1)
            raise RuntimeError("read() called while another coroutine is already waiting for incoming data")
        return await get_message(**kwargs)

    pubsub.get_message = failing_once
    assert await next_in(inbox) == {"type": "relay.catch_up"}
    assert failed
    await sender.group_send_many([("user.hugo", {"type": "relay.events", "data": [b"after"]})])
    assert await next_in(inbox) == {"type": "relay.events", "data": [b"after"]}
