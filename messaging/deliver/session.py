"""The session core: one connection of a verified user, whatever transport carries it.

A session takes parsed commands (protocol/frames.py `Command`: subscribe, unsubscribe,
publish, history, ping) and the messages of its channel-layer link (link.py), and emits
server frames and closes through its transport (transport.py). It holds the connection's
status, its subscribed channels and their sequencing (delivery.py), its cursors, the
keep-alive with its token re-check and heartbeat, and the publishes waiting for
JetStream's acks (replies.py). The WebSocket consumer (websocket.py) is one adapter of
it; a server stream (gRPC, SSE) is another.

Its messages are handled one at a time, in arrival order (the transport's adapter runs
them through the link's inbox): that is what makes the subscribe hand-over gapless
without a buffer. Events that arrive while `subscribe` reads the history wait in the
inbox, and the sequencing rule drops what the history already sent.
"""
import asyncio
import enum
import logging
import random
import time
import uuid

from django.conf import settings

from auth_pocketbase.client import PocketBaseUnavailable
from auth_pocketbase.verification import Unauthorized
from messaging import metrics
from messaging.deliver.commands import Commands
from messaging.deliver.delivery import Delivery
from messaging.deliver.replies import OrderedReplies
from messaging.deliver.transport import TransportClosed
from messaging.protocol import frames, limits
from messaging.protocol.errors import RelayError, Unavailable
from messaging.state.backends import REDIS_ERRORS

log = logging.getLogger(__name__)


class Status(enum.Enum):
    """Where a session is in its life."""

    OPENING = "opening"  # accepted, not yet verified and counted: no command is taken
    OPEN = "open"  # welcomed: commands and live delivery
    CLOSING = "closing"  # the relay closed it (refused, too slow, token revoked): nothing more is taken
    CLOSED = "closed"  # released: uncounted, out of its user's group


class Session:
    """One connection: `transport` (transport.Transport), `link` (link.LayerLink or a
    fake with the same methods), `services` (services.Services)."""

    def __init__(self, transport, link, services, connection_id: str | None = None):
        self.transport = transport
        self.link = link
        self.services = services
        self.connection_id = connection_id or uuid.uuid4().hex
        self.status = Status.OPENING
        self.user = None  # the verified auth_pocketbase.client.PocketBaseUser, once open
        self.counted = False  # in the user's connection count (state/subscriptions.py)
        self.delivery = Delivery(self)
        self.commands = Commands(self)
        self.replies = OrderedReplies(self.send, limits.PUBLISHES_IN_FLIGHT)
        self.tasks: list[asyncio.Task] = []

    # Life ----------------------------------------------------------------------------

    async def open(self, user, error: RelayError | None = None) -> bool:
        """Start the session of `user` (verified), or refuse it with `error` (unauthorized
        4401, unavailable 4503): count the connection (4429 beyond
        RELAY_MAX_CONNECTIONS_PER_USER), join the user's group, send `welcome`, start the
        keep-alive. Returns whether it is open. Raises TransportClosed."""
        if error is not None:
            code = limits.CLOSE_UNAUTHORIZED if error.code == "unauthorized" else limits.CLOSE_UNAVAILABLE
            await self.close(error, code)
            return False
        self.user = user
        registry = self.services.registry
        try:
            if not await registry.open_connection(user.id, self.connection_id, settings.RELAY_MAX_CONNECTIONS_PER_USER):
                await self.close(RelayError("rate_limited", "Too many open connections for this user."),
                                 limits.CLOSE_TOO_MANY)
                return False
            self.counted = True
            metrics.CONNECTIONS.inc()
            await self.link.join(user.id)
            subscriptions = await registry.subscriptions(user.id)
        except REDIS_ERRORS:
            await self.close(Unavailable("Redis"), limits.CLOSE_UNAVAILABLE)
            return False
        self.status = Status.OPEN
        await self.send({"type": "welcome", "userid": user.id, "name": user.name, "subscriptions": subscriptions})
        log.info("connection opened", extra=self.log_fields())
        self.tasks.append(asyncio.create_task(self.keep_alive()))
        return True

    async def close(self, error: RelayError | None, code: int) -> None:
        """Close the connection with `code` (once), after an `error` frame when given."""
        if self.status in (Status.CLOSING, Status.CLOSED):
            return
        self.status = Status.CLOSING
        try:
            if error is not None:
                await self.transport.send(frames.error_frame(error))
        except TransportClosed:
            return  # already closing: the transport's disconnect follows
        await self.transport.close(code)

    async def release(self) -> None:
        """Give back what the connection held (once): its tasks and waiting replies, its
        count, its group membership; its cursors are written first."""
        for task in self.tasks:
            task.cancel()
        self.replies.cancel()
        if self.user is None or self.status is Status.CLOSED:
            self.status = Status.CLOSED
            return
        self.status = Status.CLOSED
        log.info("connection closed", extra=self.log_fields())
        metrics.SUBSCRIPTIONS.dec(len(self.delivery.subscribed))
        services = self.services
        if self.counted:
            metrics.CONNECTIONS.dec()
        services.liveness.discard((self.user.id, self.connection_id))
        services.behind_checks.discard(self.connection_id)
        try:
            await services.cursors.flush()
            await self.link.leave(self.user.id)
            if self.counted:
                await services.registry.close_connection(self.user.id, self.connection_id)
        except REDIS_ERRORS:
            log.warning("Redis unavailable while closing connection %s", self.connection_id, extra=self.log_fields())

    async def send(self, frame: dict) -> None:
        """Send one frame. When more than RELAY_MAX_OUTGOING_BYTES already wait for the
        client, the frame is not sent (its cursor does not move) and the connection is
        closed with 4408, once. Raises TransportClosed when the connection takes no more
        (the relay closed it, or the client went away)."""
        if self.status is not Status.OPEN:
            raise TransportClosed
        if self.transport.backlog() > settings.RELAY_MAX_OUTGOING_BYTES:
            await self.close_too_slow()
        await self.transport.send(frame)

    async def close_too_slow(self) -> None:
        """Close a connection whose client does not read what it is sent with 4408, count
        it and log one line; raises TransportClosed (nothing more is written to it)."""
        metrics.SLOW_CONSUMER_CLOSES.inc()
        log.warning("closing with %d: %d bytes wait for a client that does not read them (limit %d)",
                    limits.CLOSE_TOO_SLOW, self.transport.backlog(), settings.RELAY_MAX_OUTGOING_BYTES,
                    extra=self.log_fields())
        await self.close(None, limits.CLOSE_TOO_SLOW)
        raise TransportClosed

    async def handle(self, command: frames.Command) -> None:
        """Answer one parsed command (commands.py); none is taken unless the session is
        open. Raises TransportClosed."""
        if self.status is Status.OPEN:
            await self.commands.handle(command)

    async def answer_error(self, exc: Exception, ref=None) -> None:
        """Answer a frame that could not become a command with an error frame
        (commands.py). Raises TransportClosed."""
        await self.commands.answer_error(exc, ref)

    def log_fields(self, channel: str | None = None, message_id: str | None = None) -> dict:
        """Structured log fields of this connection (never its token)."""
        fields = {"connection": self.connection_id, "user": self.user.id if self.user else None}
        if channel:
            fields["channel"] = channel
        if message_id:
            fields["message_id"] = message_id
        return fields

    # Keep-alive ------------------------------------------------------------------------

    async def keep_alive(self) -> None:
        """Re-verify the token every tick (at most 5 s, half of RELAY_AUTH_CACHE_SECONDS),
        closing with 4401 when it expires or is revoked, and every
        RELAY_HEARTBEAT_SECONDS keep the connection counted and in its group and have
        the process check it against the history (deliver/behind.py). A connection
        starts at a random phase of both, so connections opened together do not all
        verify and catch up in the same instant."""
        tick = max(0.5, min(5.0, settings.RELAY_AUTH_CACHE_SECONDS / 2, settings.RELAY_HEARTBEAT_SECONDS))
        last_heartbeat = time.monotonic() - random.uniform(0, settings.RELAY_HEARTBEAT_SECONDS)
        await asyncio.sleep(random.uniform(0, tick))
        while self.status is Status.OPEN:
            await asyncio.sleep(tick)
            try:
                if self.user.expires_at <= time.time():
                    raise Unauthorized("The token has expired.")
                await self.services.verify(self.user.token)
            except Unauthorized as exc:
                metrics.AUTH_FAILURES.labels("revoked").inc()
                return await self.close(RelayError("unauthorized", str(exc)), limits.CLOSE_UNAUTHORIZED)
            except PocketBaseUnavailable:
                pass  # keep the last good verification until PocketBase answers again
            if time.monotonic() - last_heartbeat >= settings.RELAY_HEARTBEAT_SECONDS:
                last_heartbeat = time.monotonic()
                await self.heartbeat()

    async def heartbeat(self) -> None:
        """Keep the connection counted (liveness) and in its user's group, and have the
        process check it for messages the channel layer or JetStream lost."""
        self.services.liveness.note((self.user.id, self.connection_id), True)
        self.services.behind_checks.note(self.connection_id, self)  # a catch-up if behind
        try:
            await self.link.join(self.user.id)
        except REDIS_ERRORS:
            log.warning("Redis unavailable during the heartbeat", extra=self.log_fields())
