"""The relay's channel layer: channels_redis' Redis pub/sub layer plus `group_send_many`
and `new_channel_into`.

A relay_worker hands each batch of events to many user groups at once (worker.py).
Through `group_send` that is one Redis PUBLISH round trip (and one socket write) per
group, one after another, because channels_redis' shard connection serialises them;
`group_send_many` sends the same PUBLISHes as one command per batch (a Lua script,
publish_many.lua next to this module), so redis-py packs one command and reads one reply instead of one
per group. What reaches the groups' members is exactly what `group_send` would have
sent (same Redis channel names, same serializer), so daphne processes receive through
the unchanged channels_redis layer.

A consumer reading through `receive` gets each message from channels_redis'
per-channel asyncio.Queue through a task of its own that waits on it (and a proxy
coroutine per call); `new_channel_into` hands each message to the consumer's inbox
(inbox.py) from the layer's receive loop instead, in the same order, one task step per
message fewer. That receive loop takes each message through redis-py's get_message
(a timeout, a retry wrapper and a parse for each); after each one it now also hands
over the messages hiredis has already read from the socket (`_DrainingShard`), such as
the rest of a worker's batch that arrived in the same read (docs/performance.md).

It reaches into channels_redis' per-loop layer (`_get_layer`, `_layers`, `_shards`,
`_get_shard`, `_get_group_channel_name`, `channels`), its shard connection (`_lock`,
`_ensure_redis`, `_redis`, `_pubsub`, `_subscribed_to`, `_do_receiving`,
`_receive_message`, `unsubscribe`), redis-py's PubSub state (`channels`) and its hiredis
parser (`_parser._reader`, NOT_ENOUGH_DATA), as of
channels-redis 4.3.0, redis 8.1.0 and hiredis 3.5.0 (pinned);
tests/integration/test_layers.py fails if an upgrade changes them.
"""
import asyncio
import logging
from pathlib import Path

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection
from redis._parsers.hiredis import NOT_ENOUGH_DATA

from messaging.deliver.inbox import Inbox
from messaging.state.backends import REDIS_ERRORS

log = logging.getLogger(__name__)
_PUBLISH_MANY = (Path(__file__).parent / "publish_many.lua").read_text()


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


class _DrainingShard(RedisSingleShardConnection):
    """channels_redis' shard connection whose receive loop, after each message it waited
    for, hands over the messages already read from the socket too, and which PUBLISHes a
    batch in one command (`publish_many`)."""

    _publish_many = None  # the AsyncScript of publish_many.lua, made on first use

    async def publish_many(self, publishes: list[tuple[str, bytes]]) -> None:
        """PUBLISH each `(Redis channel, data)` in list order, in one command. Raises what
        redis-py raises (ConnectionError, TimeoutError) when Redis fails; some may have
        been published then."""
        async with self._lock:
            self._ensure_redis()
            if self._publish_many is None:
                self._publish_many = self._redis.register_script(_PUBLISH_MANY)
            await self._publish_many(args=[part for publish in publishes for part in publish], client=self._redis)

    async def _do_receiving(self):
        """channels_redis' receive loop (same waiting, same retry after a second), plus
        `_drain`; a Redis outage is logged as one warning line, not a traceback. After an
        outage or any other error of the loop (either may have cost messages), every
        inbox is asked to catch up once the loop reads again (`_catch_up_inboxes`)."""
        failed = False  # since the last read: what was published meanwhile may never arrive
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    self._receive_message(await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1))
                    if failed:  # reading again (redis-py reconnected and subscribed everything again)
                        failed = False
                        self._catch_up_inboxes()
                    await self._drain()
                else:
                    await asyncio.sleep(0.1)
                continue
            except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
                raise
            except REDIS_ERRORS as exc:  # an outage: one line a second, not a traceback
                log.warning("Redis unavailable to the channel layer's receive loop (%r); retrying in 1 s", exc)
            except BaseException:
                log.exception("Unexpected exception in receive task")
            failed = True
            await asyncio.sleep(1)

    def _catch_up_inboxes(self):
        """Put `relay.catch_up` into the inbox of every channel of `new_channel_into`:
        what was published while the layer was resubscribing never reached it, and the
        history has it (messaging/deliver/delivery.py `catch_up`). A layer read through `receive`
        gets the same from its consumer's layer_receive."""
        for target in list(self.channel_layer.channels.values()):
            if isinstance(target, _IntoInbox):
                target.inbox.put({"type": "relay.catch_up"})

    async def _drain(self):
        """Hand over every reply hiredis has already parsed from what was read, without
        waiting on the socket: a published message directly, anything else (subscribe
        and unsubscribe confirmations) through redis-py's handle_message, which keeps the
        PubSub's state as get_message would. Does nothing without hiredis' parser. Raises
        an error reply, as redis-py's read would."""
        reader = getattr(getattr(self._pubsub.connection, "_parser", None), "_reader", None)
        if reader is None:
            return
        while True:
            response = reader.gets()
            if response is NOT_ENOUGH_DATA or response is False:
                return
            if type(response) is list and len(response) == 3 and response[0] == b"message":
                self._receive_message({"channel": response[1], "data": response[2]})
            elif isinstance(response, Exception):
                raise response
            else:
                self._receive_message(await self._pubsub.handle_message(response, ignore_subscribe_messages=True))


def _forget(layer, name: str) -> None:
    """Drop the Redis channel `name` from the subscriptions of its shard and of redis-py's
    PubSub once the layer unsubscribed it (or tried to: Redis was down). redis-py only
    drops a channel when Redis confirms the unsubscribe; when it reconnects before that,
    it subscribes every channel it still holds again, and a closed connection's channel
    or an empty group would stay subscribed for the life of the process
    (test_channels_and_groups_closed_while_redis_is_down_are_not_subscribed_again)."""
    shard = layer._get_shard(name)
    shard._subscribed_to.discard(name)
    if shard._pubsub is not None:
        shard._pubsub.channels.pop(name.encode(), None)


class RelayChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer (same CONFIG) with a pipelined multi-group send and
    channels whose messages go straight into an inbox."""

    def _get_layer(self):
        """channels_redis' per-loop layer, whose shard connections drain (`_DrainingShard`)."""
        created = asyncio.get_running_loop() not in self._layers
        layer = super()._get_layer()
        if created:
            layer._shards = [_DrainingShard(shard.host, layer) for shard in layer._shards]
        return layer

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
        what redis-py raises when Redis cannot unsubscribe it; either way the channel is
        not subscribed again when redis-py reconnects (`_forget`)."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            try:
                await layer._get_shard(channel).unsubscribe(channel)
            finally:
                _forget(layer, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        """channels_redis' group_discard (raises what redis-py raises when Redis cannot
        unsubscribe an emptied group); an emptied group is not subscribed again when
        redis-py reconnects (`_forget`)."""
        layer = self._get_layer()
        try:
            await layer.group_discard(group, channel)
        finally:
            name = layer._get_group_channel_name(group)
            if name not in layer.groups:  # emptied (and not joined again meanwhile)
                _forget(layer, name)

    async def group_send_many(self, messages: list[tuple[str, dict]]) -> None:
        """Send each `(group, message)` as `group_send(group, message)` would, in list
        order, in one Redis command per shard (`_DrainingShard.publish_many`).

        Raises what redis-py raises (ConnectionError, TimeoutError) when Redis fails; the
        caller then cannot know which messages went out and sends them again.
        """
        layer = self._get_layer()
        by_shard: dict = {}
        for group, message in messages:
            name = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(name), []).append((name, self.serialize(message)))
        for shard, publishes in by_shard.items():
            await shard.publish_many(publishes)
