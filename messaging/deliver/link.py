"""A session's place in the channel layer: its own channel, whose messages go into an
inbox in arrival order, and its user's group `user.<userid>` (PROTOCOL.md "Wiring").

The workers send a user's events to that group (`relay.events`); a connection that
unsubscribes tells the user's other connections through it (`relay.unsubscribed`); the
session and the process's heartbeat check ask for a catch-up through the inbox
(`relay.catch_up`). `dispatch` hands each of these to the session, whatever transport
carries it.
"""
import asyncio
import logging

from channels.layers import get_channel_layer

from messaging.deliver.inbox import Inbox
from messaging.state.backends import REDIS_ERRORS
from messaging.state.keys import user_group

log = logging.getLogger(__name__)

CATCH_UP = {"type": "relay.catch_up"}


class LayerLink:
    """One session's channel in the channel layer (the relay's pub/sub layer,
    overrides/channels_redis_layer.py: it puts each message straight into `inbox`)."""

    def __init__(self, layer=None):
        self.layer = layer or get_channel_layer()
        self.inbox = Inbox()
        self.channel_name: str | None = None

    async def open(self) -> None:
        """Make the channel (a Redis subscription). Raises redis-py's errors when Redis fails."""
        self.channel_name = await self.layer.new_channel_into(self.inbox)

    async def join(self, userid: str) -> None:
        """Join (or stay in) the user's group. Raises redis-py's errors when Redis fails."""
        await self.layer.group_add(user_group(userid), self.channel_name)

    async def leave(self, userid: str) -> None:
        """Leave the user's group. Raises redis-py's errors when Redis fails."""
        await self.layer.group_discard(user_group(userid), self.channel_name)

    async def tell_user(self, userid: str, message: dict) -> None:
        """Send `message` to every connection of the user (this one included). Raises
        redis-py's errors when Redis fails."""
        await self.layer.group_send(user_group(userid), message)

    def put(self, message: dict) -> None:
        """Put `message` into the inbox now (from this event loop)."""
        self.inbox.put(message)

    def put_later(self, delay_s: float, message: dict) -> None:
        """Put `message` into the inbox after `delay_s` seconds."""
        asyncio.get_running_loop().call_later(delay_s, self.inbox.put, message)

    async def close(self) -> None:
        """Give the channel back. When Redis is unavailable, or redis-py's connection is
        being re-established by the layer's receive loop (its RuntimeError "read() called
        while another coroutine is already waiting"), that is one warning line: the layer
        forgets the channel either way."""
        if self.channel_name is None:
            return
        try:
            await self.layer.close_channel(self.channel_name)
        except (*REDIS_ERRORS, RuntimeError) as exc:
            log.warning("Redis unavailable while closing a connection's channel (%r)", exc)


async def dispatch(session, message: dict) -> None:
    """Hand a channel-layer message of `session`'s inbox to it. Raises ValueError for a
    type the relay does not send."""
    kind = message["type"]
    if kind == "relay.events":  # a worker's batch of this user's events (fanout/worker.py)
        await session.delivery.on_events(message["data"])
    elif kind == "relay.catch_up":
        await session.delivery.catch_up()
    elif kind == "relay.unsubscribed":  # another connection of the user unsubscribed, or lost access
        await session.delivery.end(message["channel"], message["generation"], message.get("reason"))
    else:
        raise ValueError(f"No handler for message type {kind}")
