"""The relay's channel layer: channels_redis' Redis pub/sub layer plus `group_send_many`.

A relay_worker hands each batch of events to many user groups at once (worker.py).
Through `group_send` that is one Redis PUBLISH round trip (and one socket write) per
group, one after another, because channels_redis' shard connection serialises them;
`group_send_many` sends the same PUBLISHes pipelined, one round trip per batch. What
reaches the groups' members is exactly what `group_send` would have sent (same Redis
channel names, same serializer), so daphne processes receive through the unchanged
channels_redis layer.

It reaches into channels_redis' per-loop layer (`_get_layer`, `_get_shard`,
`_get_group_channel_name`) and its shard connection (`_lock`, `_ensure_redis`,
`_redis`), as of channels-redis 4.3.0 (pinned); tests/integration/test_layers.py fails
if an upgrade changes them.
"""
from channels_redis.pubsub import RedisPubSubChannelLayer


def user_group(userid: str) -> str:
    """The channel-layer group of all connections of a user (PROTOCOL.md "Wiring"):
    `user.<userid>`, userid already validated."""
    return f"user.{userid}"


class RelayChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer (same CONFIG) with a pipelined multi-group send."""

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
