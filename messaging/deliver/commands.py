"""The commands of a session (PROTOCOL.md "WebSocket" table): subscribe, unsubscribe,
publish, history and ping, each answered in command order, and the refusals that end a
subscription when the user lost access to its channel.
"""
import logging

from django.conf import settings

from messaging.deliver.transport import TransportClosed
from messaging.protocol import frames
from messaging.protocol.errors import RelayError, Unavailable
from messaging.state.access import read_refused
from messaging.state.backends import REDIS_ERRORS
from messaging.state.subscriptions import SubscriptionLimit

log = logging.getLogger(__name__)


class Commands:
    """The command handlers of one session (session.Session), named for the command
    types; each raises RelayError for a refusal, which `handle` answers."""

    def __init__(self, session):
        self.session = session

    async def handle(self, command: frames.Command) -> None:
        """Answer one command, in command order; a failure is answered
        with an error frame echoing its `ref`, and the session stays open. A publish's
        ack waits for JetStream while the next commands are taken (replies.py). Raises
        TransportClosed."""
        try:
            if command.type == "publish":
                return await self.publish(command)
            await self.session.replies.drain()  # every other reply goes after the acks still deferred
            await getattr(self, command.type)(command)
        except TransportClosed:
            raise
        except Exception as exc:  # never let a command end the connection
            await self.answer_error(exc, command.ref)

    async def answer_error(self, exc: Exception, ref=None) -> None:
        """Answer a command (or a frame that could not become one) that raised `exc`,
        after the replies deferred before it. Raises TransportClosed."""
        await self.session.replies.drain()
        await self.session.send(self.error_reply(exc, ref))

    def error_reply(self, exc: Exception, ref) -> dict:
        """The error frame for `exc`: a RelayError as itself, a Redis error as
        `unavailable`, anything else logged and `unavailable`."""
        if isinstance(exc, RelayError):
            return frames.error_frame(exc, ref)
        if isinstance(exc, REDIS_ERRORS):
            return frames.error_frame(Unavailable("Redis"), ref)
        log.error("Unexpected error handling a command", exc_info=exc, extra=self.session.log_fields())
        return frames.error_frame(Unavailable("The relay"), ref)

    async def ping(self, command) -> None:
        """`ping` -> `pong`."""
        await self.session.send(frames.with_ref({"type": "pong"}, command.ref))

    async def publish(self, command) -> None:
        """`publish` -> store and hand to NATS now; `ack` with the message (ts in Unix
        ns) once JetStream acked it. Raises RelayError (forbidden, rate_limited,
        unavailable)."""
        message, _, acked = await self.session.services.start_publish(self.session.user, command.channel, command.text,
                                                              command.client_id)
        await self.session.replies.defer(self.ack_once_acked(command, message, acked))

    async def ack_once_acked(self, command, message: dict, acked) -> dict:
        """The reply to a publish once `acked` completed: its `ack` frame, or the error
        frame when JetStream did not ack."""
        try:
            await acked
        except Exception as exc:
            return self.error_reply(exc, command.ref)
        log.debug("published", extra=self.session.log_fields(command.channel, message["id"]))
        frame = {"type": "ack", "message": message}
        if command.client_id is not None:
            frame["client_id"] = command.client_id
        return frames.with_ref(frame, command.ref)

    async def history(self, command) -> None:
        """`history` -> one page of stored messages, oldest first, with `more`. Raises
        RelayError (forbidden)."""
        await self.check_read(command.channel)
        page = await self.session.services.history.page(command.channel, since=command.since, before=command.before,
                                                limit=command.limit)
        await self.session.send(frames.with_ref(
            {"type": "history", "channel": command.channel, "messages": page.messages, "more": page.more}, command.ref
        ))

    async def subscribe(self, command) -> None:
        """`subscribe` -> record the subscription, send `subscribed` with the history after
        `since` (or the cursor), then live messages. Raises RelayError (forbidden,
        rate_limited)."""
        channel, user = command.channel, self.session.user
        await self.check_read(channel)
        try:
            cursor, generation = await self.session.services.registry.subscribe(
                user.id, channel, settings.RELAY_MAX_SUBSCRIPTIONS_PER_USER)
        except SubscriptionLimit:
            raise RelayError("rate_limited", "Too many subscriptions for this user.") from None
        self.session.services.mirror.note((channel, user.id), user.name)
        since = command.since if command.since is not None else cursor
        page, truncated = await self.session.services.history.newest_after(channel, since, command.limit)
        await self.session.send(frames.with_ref({
            "type": "subscribed", "channel": channel, "messages": page.messages,
            "truncated": truncated and since is not None,
        }, command.ref))
        self.session.delivery.start(channel, max(page.head, since or 0), generation)
        if page.messages:
            self.session.delivery.move_cursor(channel, page.head)
        log.info("subscribed", extra=self.session.log_fields(channel))

    async def unsubscribe(self, command) -> None:
        """`unsubscribe` -> end the user's subscription (end_user_subscription)."""
        await self.end_user_subscription(command.channel, None, command.ref)

    async def end_user_subscription(self, channel: str, reason: str | None, ref=None) -> None:
        """End the user's subscription to `channel` everywhere: the registry, the SQL
        mirror, this connection (an `unsubscribed` frame, with `reason` when given and
        echoing `ref`) and the user's other connections (relay.unsubscribed). Raises
        redis-py's errors when Redis fails (before anything changed, unless it fails
        at the group send)."""
        generation = await self.session.services.registry.unsubscribe(self.session.user.id, channel)
        self.session.services.mirror.note((channel, self.session.user.id), None)
        self.session.delivery.drop(channel)
        log.info("unsubscribed", extra=self.session.log_fields(channel))
        await self.session.send(frames.with_ref(frames.unsubscribed_frame(channel, reason), ref))
        await self.session.link.tell_user(self.session.user.id, {
            "type": "relay.unsubscribed", "channel": channel, "generation": generation, "reason": reason,
        })

    async def check_read(self, channel: str) -> None:
        """Raise RelayError(forbidden) unless the user may read `channel`; when this
        connection has it subscribed, the user lost access and the subscription ends
        first (lose_access)."""
        policy = await self.session.services.policy_for(channel)
        if not policy.may_read(self.session.user.id):
            if channel in self.session.delivery.subscribed:
                await self.lose_access(channel)
            raise read_refused(channel)

    async def lose_access(self, channel: str) -> None:
        """The user may no longer read `channel`: end the subscription as `unsubscribe`
        does, with reason forbidden. With Redis down this connection stops delivering
        `channel` all the same; ops/access_changes.py's sweep ends the registry's record."""
        try:
            await self.end_user_subscription(channel, "forbidden")
        except REDIS_ERRORS as exc:
            log.warning("Redis unavailable while ending a subscription whose access was withdrawn (%r)", exc,
                        extra=self.session.log_fields(channel))
            if channel in self.session.delivery.subscribed:
                self.session.delivery.drop(channel)
                await self.session.send(frames.unsubscribed_frame(channel, "forbidden"))
