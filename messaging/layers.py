"""The relay's channel layer: channels_redis' Redis pub/sub layer plus `group_send_many`
and `new_channel_into`.

A relay_worker hands each batch of events to many user groups at once (worker.py).
Through `group_send` that is one Redis PUBLISH round trip (and one socket write) per
group, one after another, because channels_redis' shard connection serialises them;
`group_send_many` sends the same PUBLISHes pipelined, one round trip per batch. What
reaches the groups' members is exactly what `group_send` would have sent (same Redis
channel names, same serializer), so daphne processes receive through the unchanged
channels_redis layer.

A consumer reading through `receive` gets each message from channels_redis'
per-channel asyncio.Queue through a task of its own that waits on it (and a proxy
coroutine per call); `new_channel_into` hands each message to the consumer's inbox
(inbox.py) from the layer's receive loop instead, in the same order, one task step per
message fewer (docs/performance.md).

It reaches into channels_redis' per-loop layer (`_get_layer`, `_get_shard`,
`_get_group_channel_name`, `channels`) and its shard connection (`_lock`,
`_ensure_redis`, `_redis`, `unsubscribe`), as of channels-redis 4.3.0 (pinned);
tests/integration/test_layers.py fails if an upgrade changes them.
"""
from channels_redis.pubsub import RedisPubSubChannelLayer

from .inbox import Inbox


def user_group(userid: str) -> str:
    """The channel-layer group of all connections of a user (PROTOCOL.md "Wiring"):
    `user.<userid>`, userid already validated."""
    return f"user.{userid}"


class _IntoInbox:
    """Stands in for channels_redis' per-channel asyncio.Queue (its receive loop calls
    `put_nowait` with each raw message of the channel and of its groups)."""

    __slots__ = ("inbox", "deserialize")

    def __init__(self, inbox: Inbox, deserialize):
        self.inbox = inbox
        self.deserialize = deserialize

    def put_nowait(self, data: bytes) -> None:
        try:
            message = self.deserialize(data)
        except Exception as exc:  # the consumer fails, as a failing receive() would make it
            return self.inbox.fail(exc)
        self.inbox.put(message)


class RelayChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer (same CONFIG) with a pipelined multi-group send and
    channels whose messages go straight into an inbox."""

    async def new_channel_into(self, inbox: Inbox, prefix: str = "specific.") -> str:
        """`new_channel(prefix)`, whose messages (its own and its groups') are put into
        `inbox` as they arrive instead of waiting for `receive`. Give it back with
        `close_channel`. Raises what redis-py raises when Redis cannot subscribe it."""
        channel = await self.new_channel(prefix)
        self._get_layer().channels[channel] = _IntoInbox(inbox, self.deserialize)
        return channel

    async def close_channel(self, channel: str) -> None:
        """Stop a channel of `new_channel_into` (what channels_redis' receive does when its
        consumer's receive is cancelled): forget it and unsubscribe it from Redis. Raises
        what redis-py raises when Redis cannot unsubscribe it."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)

    async def group_send_many(self, messages: list[tuple[str, dict]]) -> None:
        """Send each `(group, message)` as `group_send(group, message)` would, pipelined:
        one round trip per Redis shard, in list order.

        Raises what redis-py raises (ConnectionError, TimeoutError) when Redis fails; the
        caller then cannot know which messages went out and sends them again.
        """
        layer = self._get_layer()
        by_shard: dict = {}
        for group, message in messages:
            name = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(name), []).append((name, self.serialize(message)))
        for shard, publishes in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for name, data in publishes:
                        pipe.publish(name, data)
                    await pipe.execute()
