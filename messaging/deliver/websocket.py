"""The WebSocket endpoint `/ws/` (PROTOCOL.md "WebSocket").

One ChatConsumer per connection. Channels dispatches its frames and channel-layer
events one at a time, in arrival order; that is what makes the subscribe hand-over
gapless without an explicit buffer: events that arrive while `subscribe` reads the
history wait in the layer's queue and are then sequenced by delivery.plan against
what the history already sent.
"""
import asyncio
import logging
import random
import time
import uuid

import orjson
from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.consumer import get_handler_name
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential
from django.conf import settings
from django.db import DatabaseError

from auth_pocketbase.client import PocketBaseUnavailable
from auth_pocketbase.verification import Unauthorized, get_verifier
from overrides import daphne_frames as frame_writer

from messaging import metrics
from messaging.state import access
from messaging.state import backends
from messaging.protocol import frames
from messaging.deliver import behind as heartbeats
from messaging.publish import publish as publishing
from messaging.state import records
from messaging.state import cursors as writers
from messaging.deliver.inbox import Inbox
from messaging.deliver.replies import OrderedReplies
from overrides.channels_redis_layer import user_group
from messaging.state.backends import REDIS_ERRORS
from messaging.deliver.sequencing import Plan, plan
from messaging.protocol.errors import RelayError, Unavailable
from messaging.state.subscriptions import Registry, SubscriptionLimit

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_MANY = 4429
CLOSE_TOO_SLOW = 4408  # the client did not read fast enough (RELAY_MAX_OUTGOING_BYTES)
CLOSE_UNAVAILABLE = 4503
PUBLISHES_IN_FLIGHT = 64  # publishes of one connection waiting for JetStream's acks at once
REJOIN_FIRST_WAIT_S = 0.25  # after the channel layer failed, backing off from here up to 5 s
_cleanups: set[asyncio.Task] = set()  # clean-ups of ended consumers, kept until done


def in_background(coro) -> None:
    """Run `coro` (a clean-up of an ended consumer) in a task of its own, kept until done."""
    task = asyncio.get_running_loop().create_task(coro)
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


class Subscribed:
    """What a connection knows of one of its subscriptions: the highest ts it sent
    (`last`, Unix ns, 0 before any) and the registry generation it subscribed at."""

    __slots__ = ("last", "generation")

    def __init__(self, last: int, generation: int):
        self.last = last
        self.generation = generation


class ChatConsumer(AsyncWebsocketConsumer):
    """One WebSocket connection of a verified PocketBase user."""

    user = None
    backlog = None  # () -> bytes waiting in daphne for the client (frame_writer.backlog_for), if known
    too_slow = False  # closed with 4408 (close_too_slow)

    async def __call__(self, scope, receive, send):
        """channels' AsyncConsumer.__call__, with the connection's messages dispatched
        through inbox.py instead of channels' await_many_dispatch: frames from `receive`,
        channel-layer messages put into the inbox by the layer (layers.py
        `new_channel_into`) or, on a layer without it, from a receive made to survive a
        Redis outage (the connection stays open, publish answers `unavailable` meanwhile,
        the receive is retried with backoff and the connection rejoins its group when
        Redis is back, never daphne's 1011)."""
        self.scope = scope
        self.subscribed: dict[str, Subscribed] = {}
        self.tasks: list[asyncio.Task] = []
        self.replies = OrderedReplies(self.send_frame, PUBLISHES_IN_FLIGHT)
        self.inbox = Inbox()
        self.connection_id = uuid.uuid4().hex
        self.counted = self.closed = self.released = self.catch_up_due = False
        self.catch_up_delay = 0.0
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.cursors = writers.cursors()  # this process's batch, looked up once, not per message
        self.base_send = send
        self.write_text = frame_writer.writer_for(send)
        self.backlog = frame_writer.backlog_for(send)
        fed = hasattr(self.channel_layer, "new_channel_into")  # the layer puts into the inbox itself
        try:
            if fed:
                self.channel_name = await self.channel_layer.new_channel_into(self.inbox)
            else:  # channels_redis' list layer (RELAY_CHANNEL_LAYER=list)
                self.channel_name = await self.channel_layer.new_channel()
        except REDIS_ERRORS:  # the pub/sub layer subscribes here: answer, never a 500
            await receive()  # websocket.connect
            await self.accept()
            return await self.refuse(Unavailable("Redis"), CLOSE_UNAVAILABLE)
        try:
            await self.inbox.run([receive] if fed else [receive, self.layer_receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            if not self.released:  # daphne killed a consumer that was slow to stop
                self.stop_tasks()
                in_background(self.release())
            if fed:  # no cancelled receive unsubscribes the channel here
                in_background(self.close_layer_channel())

    async def dispatch(self, message):
        """channels' dispatch without its per-event aclose_old_connections() thread hop:
        the few database calls go through channels' database_sync_to_async, which
        closes stale connections itself (access.py, records.py)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def close_layer_channel(self):
        """Give back the channel of `new_channel_into` (its Redis subscription). When Redis
        is unavailable, or redis-py's connection is being re-established by the layer's
        receive loop (its RuntimeError "read() called while another coroutine is already
        waiting"), that is one warning line: the layer forgets the channel either way."""
        try:
            await self.channel_layer.close_channel(self.channel_name)
        except (*REDIS_ERRORS, RuntimeError) as exc:
            log.warning("Redis unavailable while closing the connection's channel (%r)", exc, extra=self.log_fields())

    async def layer_receive(self):
        """The next channel-layer event of this connection from `receive`, waiting out
        Redis outages: after one it yields a `relay.catch_up` event, since the channel
        layer may have lost events meanwhile, and the history has them.
        """
        try:  # the common case, without a retry loop's cost per event
            return await self.channel_layer.receive(self.channel_name)
        except REDIS_ERRORS as exc:
            log.warning("Redis unavailable under the connection (%r); waiting for it", exc, extra=self.log_fields())
        await asyncio.sleep(REJOIN_FIRST_WAIT_S)  # back off before the first attempt, too
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=REJOIN_FIRST_WAIT_S, max=5), retry=retry_if_exception_type(REDIS_ERRORS)
        ):
            with attempt:
                if self.user is not None:
                    await self.channel_layer.group_add(user_group(self.user.id), self.channel_name)
                return {"type": "relay.catch_up"}

    async def connect(self):
        """websocket.connect: accept, then authenticate and start the session (start_session)."""
        await self.accept()
        await self.start_session()

    async def start_session(self):
        """Authenticate, count the connection, join the user's group, send welcome."""
        auth = self.scope["relay_auth"]
        if auth.error:
            code = CLOSE_UNAUTHORIZED if auth.error == "unauthorized" else CLOSE_UNAVAILABLE
            return await self.refuse(RelayError(auth.error, auth.reason), code)
        self.user = auth.user
        be = backends.get()
        self.registry = Registry(be.redis)
        self.history = publishing.history_store(be.redis)
        try:
            if not await self.registry.open_connection(
                self.user.id, self.connection_id, settings.RELAY_MAX_CONNECTIONS_PER_USER
            ):
                return await self.refuse(RelayError("rate_limited", "Too many open connections for this user."), CLOSE_TOO_MANY)
            self.counted = True
            metrics.CONNECTIONS.inc()
            await self.channel_layer.group_add(user_group(self.user.id), self.channel_name)
            subscriptions = await self.registry.subscriptions(self.user.id)
        except REDIS_ERRORS:
            return await self.refuse(Unavailable("Redis"), CLOSE_UNAVAILABLE)
        await self.send_frame(
            {"type": "welcome", "userid": self.user.id, "name": self.user.name, "subscriptions": subscriptions}
        )
        log.info("connection opened", extra=self.log_fields())
        self.tasks.append(asyncio.create_task(self.keep_alive()))

    async def refuse(self, error: RelayError, close_code: int):
        """Send an error frame and close with an application close code (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.send_frame(frames.error_frame(error))
        except StopConsumer:
            return  # already closing: daphne's websocket.disconnect follows
        await self.close(close_code)

    async def close_too_slow(self):
        """Close a connection whose client does not read what it is sent (more than
        RELAY_MAX_OUTGOING_BYTES wait in daphne for it) with 4408, once, and raise
        StopConsumer: nothing more is written to it, and the frame that found it so is not
        sent (its cursor does not move). The close frame waits behind what is queued;
        autobahn drops a peer that does not answer it within its close handshake timeout
        (1 s, daphne does not change it), and transport.py gives the bytes back then."""
        if not self.too_slow:
            self.too_slow = self.closed = True
            metrics.SLOW_CONSUMER_CLOSES.inc()
            log.warning("closing with %d: %d bytes wait for a client that does not read them (limit %d)",
                        CLOSE_TOO_SLOW, self.backlog(), settings.RELAY_MAX_OUTGOING_BYTES, extra=self.log_fields())
            await self.close(CLOSE_TOO_SLOW)
        raise StopConsumer

    async def disconnect(self, code):
        """websocket.disconnect (`code`: the WebSocket close code): give back what the connection held."""
        await self.release()

    def stop_tasks(self):
        """Cancel the connection's background tasks (keep-alive) and drop the replies
        still waiting for JetStream (their messages are stored and handed over)."""
        for task in self.tasks:
            task.cancel()
        self.replies.cancel()

    async def release(self):
        """Stop background tasks and give back what the connection held (once)."""
        self.stop_tasks()
        if self.user is None or self.released:
            return
        self.released = True
        log.info("connection closed", extra=self.log_fields())
        metrics.SUBSCRIPTIONS.dec(len(self.subscribed))
        if self.counted:
            metrics.CONNECTIONS.dec()
        writers.liveness().discard((self.user.id, self.connection_id))
        heartbeats.behind_checks().discard(self.connection_id)
        try:
            await self.cursors.flush()
            await self.channel_layer.group_discard(user_group(self.user.id), self.channel_name)
            if self.counted:
                await self.registry.close_connection(self.user.id, self.connection_id)
        except REDIS_ERRORS:
            log.warning("Redis unavailable while closing connection %s", self.connection_id, extra=self.log_fields())

    def log_fields(self, channel: str | None = None, message_id: str | None = None) -> dict:
        """Structured log fields of this connection (never its token)."""
        fields = {"connection": self.connection_id, "user": self.user.id if self.user else None}
        if channel:
            fields["channel"] = channel
        if message_id:
            fields["message_id"] = message_id
        return fields

    async def send_frame(self, frame: dict):
        """Send `frame` (a dict) as one JSON text frame, written straight to daphne's
        connection when frame_writer.py can, else through channels' send; an unencodable
        frame becomes a `bad_frame` error frame instead (never daphne's 1011). Raises
        StopConsumer when the connection is already closing (the client sent its Close
        frame, or the relay refused it), which ends the consumer, and when more than
        RELAY_MAX_OUTGOING_BYTES still wait for the client (close_too_slow).
        """
        if self.backlog is not None and self.backlog() > settings.RELAY_MAX_OUTGOING_BYTES:
            await self.close_too_slow()
        try:
            data = orjson.dumps(frame)
        except TypeError:  # validation keeps client strings encodable; never 1011 if not
            log.exception("unencodable frame of type %s", frame.get("type"), extra=self.log_fields())
            data = orjson.dumps(frames.error_frame(RelayError("bad_frame", "The frame could not be answered.")))
        if self.write_text is None or not self.write_text(data):
            try:
                await self.send(text_data=data.decode())
            except Disconnected:  # autobahn: closing, no frame can reach the client any more
                raise StopConsumer from None  # end quietly, not as daphne's "Exception inside application"

    # Client frames --------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        """A client frame: size limit (too_large, 4413), JSON decoding, then on_<type>; every
        failure is answered with an error frame echoing `ref`, and the connection stays open.
        """
        if self.user is None or self.closed:
            return
        obj = None
        try:
            if frames.frame_too_large(text_data if text_data is not None else bytes_data):
                raise RelayError("too_large", "Frames are limited to 65536 bytes.")
            if text_data is None:
                raise RelayError("bad_frame", "Binary frames are not accepted; send JSON text.")
            obj = frames.decode(text_data)
            command = frames.parse_command(obj, settings.RELAY_MAX_MESSAGE_CHARS)
            if command.type == "publish":
                return await self.on_publish(command)  # its ack is deferred, in frame order
            await self.replies.drain()  # every other reply goes after the acks still deferred
            await getattr(self, f"on_{command.type}")(command)
        except StopConsumer:  # the connection is closing (send_frame)
            raise
        except Exception as exc:  # never let a client frame end in daphne's 1011
            await self.replies.drain()
            if isinstance(exc, RelayError) and exc.code == "too_large":
                return await self.refuse(exc, CLOSE_TOO_LARGE)
            await self.send_frame(self.error_reply(exc, frames.safe_ref(obj)))

    def error_reply(self, exc: Exception, ref) -> dict:
        """The error frame answering a client frame that raised `exc`: a RelayError as
        itself, a Redis error as `unavailable`, anything else logged and `unavailable`."""
        if isinstance(exc, RelayError):
            return frames.error_frame(exc, ref)
        if isinstance(exc, REDIS_ERRORS):
            return frames.error_frame(Unavailable("Redis"), ref)
        log.error("Unexpected error handling a frame", exc_info=exc, extra=self.log_fields())
        return frames.error_frame(Unavailable("The relay"), ref)

    async def on_ping(self, command):
        """`ping` -> `pong`."""
        await self.send_frame(frames.with_ref({"type": "pong"}, command.ref))

    async def on_publish(self, command):
        """`publish` -> store and hand to NATS now; `ack` with the message (ts in Unix
        ns) once JetStream acked it, while the connection takes its next frames
        (replies.py keeps the replies in order). Raises RelayError (forbidden,
        rate_limited, unavailable), answered by receive().
        """
        message, _, acked = await publishing.start_publish(self.user, command.channel, command.text, command.client_id)
        await self.replies.defer(self.ack_once_acked(command, message, acked))

    async def ack_once_acked(self, command, message: dict, acked) -> dict:
        """The reply to `command` (a publish) once `acked` completed: its `ack` frame,
        or the error frame when JetStream did not ack."""
        try:
            await acked
        except Exception as exc:
            return self.error_reply(exc, command.ref)
        log.debug("published", extra=self.log_fields(command.channel, message["id"]))
        frame = {"type": "ack", "message": message}
        if command.client_id is not None:
            frame["client_id"] = command.client_id
        return frames.with_ref(frame, command.ref)

    async def on_history(self, command):
        """`history` -> one page of stored messages, oldest first, with `more`. Raises
        RelayError (forbidden) when the user may not read the channel.
        """
        await self.check_read(command.channel)
        page = await self.history.page(command.channel, since=command.since, before=command.before, limit=command.limit)
        await self.send_frame(frames.with_ref(
            {"type": "history", "channel": command.channel, "messages": page.messages, "more": page.more}, command.ref
        ))

    async def on_subscribe(self, command):
        """`subscribe` -> record the subscription, send `subscribed` with the history after
        `since` (or the cursor), then live messages (delivery.plan keeps it gapless).
        Raises RelayError (forbidden, rate_limited).
        """
        channel = command.channel
        await self.check_read(channel)
        try:
            cursor, generation = await self.registry.subscribe(
                self.user.id, channel, settings.RELAY_MAX_SUBSCRIPTIONS_PER_USER
            )
        except SubscriptionLimit:
            raise RelayError("rate_limited", "Too many subscriptions for this user.") from None
        records.mirror().note((channel, self.user.id), self.user.name)
        since = command.since if command.since is not None else cursor
        page, truncated = await self.history.newest_after(channel, since, command.limit)
        await self.send_frame(frames.with_ref({
            "type": "subscribed", "channel": channel, "messages": page.messages,
            "truncated": truncated and since is not None,
        }, command.ref))
        last = max(page.head, since or 0)
        state = self.subscribed.get(channel)
        if state is None:
            self.subscribed[channel] = Subscribed(last, generation)
            metrics.SUBSCRIPTIONS.inc()
        else:
            state.last, state.generation = max(state.last, last), generation
        if page.messages:
            self.move_cursor(channel, page.head)
        log.info("subscribed", extra=self.log_fields(channel))

    async def on_unsubscribe(self, command):
        """`unsubscribe` -> end the user's subscription, answer `unsubscribed`, and tell the
        user's other connections (relay.unsubscribed).
        """
        await self.end_user_subscription(command.channel, None, command.ref)

    async def end_user_subscription(self, channel: str, reason: str | None, ref=None):
        """End the user's subscription to `channel` everywhere: the registry, the SQL
        mirror, this connection (an `unsubscribed` frame, with `reason` when given and
        echoing `ref`) and the user's other connections (relay.unsubscribed). Raises
        redis-py's errors when Redis fails (before anything changed, unless it fails
        at the group send)."""
        generation = await self.registry.unsubscribe(self.user.id, channel)
        records.mirror().note((channel, self.user.id), None)
        self.drop_channel(channel)
        log.info("unsubscribed", extra=self.log_fields(channel))
        await self.send_frame(frames.with_ref(frames.unsubscribed_frame(channel, reason), ref))
        await self.channel_layer.group_send(user_group(self.user.id), {
            "type": "relay.unsubscribed", "channel": channel, "generation": generation, "reason": reason,
        })

    async def check_read(self, channel: str):
        """access.check_read for a frame that reads `channel`; when it is refused and
        this connection has `channel` subscribed, the user lost access: the subscription
        ends first (lose_access). Raises RelayError(forbidden)."""
        try:
            await access.check_read(channel, self.user.id)
        except RelayError:
            if channel in self.subscribed:
                await self.lose_access(channel)
            raise

    async def may_still_read(self, channel: str) -> bool:
        """Whether the user may still read `channel` by its current policy (at most
        access.POLICY_TTL seconds old; a cache hit on the hot path). When not, the
        subscription ends (lose_access) and the answer is False. When the database
        cannot tell, the answer is False too, and a catch-up delivers what was held back
        once it can."""
        try:
            policy = access.cached_policy(channel) or await access.policy_for(channel)
        except DatabaseError as exc:
            log.warning("database unavailable while checking access (%r); catching up later", exc,
                        extra=self.log_fields(channel))
            self.schedule_catch_up()
            return False
        if policy.may_read(self.user.id):
            return True
        await self.lose_access(channel)
        return False

    async def lose_access(self, channel: str):
        """The user may no longer read `channel`: end the subscription as `unsubscribe`
        does, with reason forbidden. With Redis down this connection stops delivering
        `channel` all the same; revocation.py's sweep ends the registry's record."""
        try:
            await self.end_user_subscription(channel, "forbidden")
        except REDIS_ERRORS as exc:
            log.warning("Redis unavailable while ending a subscription whose access was withdrawn (%r)", exc,
                        extra=self.log_fields(channel))
            if channel in self.subscribed:
                self.drop_channel(channel)
                await self.send_frame(frames.unsubscribed_frame(channel, "forbidden"))

    # Channel-layer events ---------------------------------------------------------

    async def relay_events(self, event):
        """Events of this user from NATS, handed over by a relay_worker in one
        channel-layer message (`data`: event payloads in arrival order, worker.py)."""
        for payload in event["data"]:
            await self.handle_event(payload)

    async def relay_event(self, event):
        """One event of this user (`data`: its payload), as workers before batching sent them."""
        await self.handle_event(event["data"])

    async def handle_event(self, payload: bytes | str):
        """Act on one event payload (events.py): deliver, drop or fill, or end a subscription."""
        data = orjson.loads(payload)
        if data["k"] == "revoked":
            access.forget(data["c"])
            return await self.end_subscription(data["c"], data["g"], "forbidden")
        message = data["m"]
        channel = message["channelid"]
        state = self.subscribed.get(channel)
        if state is None:
            return
        if data.get("r"):
            return await self.deliver(channel, state, [message], replay=True)
        step = plan(state.last, message["ts"], data.get("p", 0))
        if step is Plan.DROP:
            return
        batch = [message]
        if step is Plan.FILL:
            metrics.GAP_FILLS.inc()
            try:
                batch = await self.history.between(channel, state.last, message["ts"]) or batch
            except REDIS_ERRORS:
                # Never deliver past a gap: the catch-up delivers all of it once Redis answers.
                log.warning("Redis unavailable while filling a gap; catching up later", extra=self.log_fields(channel))
                return self.schedule_catch_up()
        await self.deliver(channel, state, batch)

    async def relay_catch_up(self, event):
        """Deliver whatever the history holds beyond what this connection sent, for every
        subscribed channel: heals events the channel layer lost (Redis outage, capacity,
        expiry). Runs after an outage, and when a heartbeat (every RELAY_HEARTBEAT_SECONDS)
        finds the connection behind the history (heartbeats.py); one pipelined read."""
        self.catch_up_due = False
        channels = list(self.subscribed)
        try:
            heads = await self.history.heads(channels)
            for channel, head in zip(channels, heads):
                state = self.subscribed.get(channel)
                if state is not None and head > state.last:
                    metrics.GAP_FILLS.inc()
                    await self.deliver(channel, state, await self.history.between(channel, state.last, head))
        except REDIS_ERRORS:
            return self.schedule_catch_up()
        self.catch_up_delay = 0.0

    def schedule_catch_up(self):
        """Run relay_catch_up again soon (backing off while Redis keeps failing), once
        however often it is asked for before it runs."""
        if self.catch_up_due:
            return
        self.catch_up_due = True
        self.catch_up_delay = min(5.0, max(0.25, self.catch_up_delay * 2))
        asyncio.get_running_loop().call_later(self.catch_up_delay, self.inbox.put, {"type": "relay.catch_up"})

    async def deliver(self, channel: str, state: "Subscribed", batch: list, replay: bool = False):
        """Send messages of one channel in ts order and note the new position; with
        `replay`, as `replay` message frames, moving nothing. The one way channel
        content reaches the client after its `subscribed` frame (live events, gap
        fills, catch-ups, replays): nothing goes when the user may no longer read the
        channel (may_still_read ends the subscription instead)."""
        if not batch or not await self.may_still_read(channel):
            return
        metrics.MESSAGES_DELIVERED.inc(len(batch))
        if replay:
            for item in batch:
                await self.send_frame({"type": "message", "message": item, "replay": True})
            return
        now = time.time_ns()
        for item in batch:
            metrics.DELIVERY_LATENCY.observe(max(0, now - item["ts"]) / 1e9)
            await self.send_frame({"type": "message", "message": item})
        state.last = batch[-1]["ts"]
        self.move_cursor(channel, state.last)

    async def relay_unsubscribed(self, event):
        """Another connection of this user unsubscribed from a channel (or found that
        the user lost access: `reason` forbidden)."""
        await self.end_subscription(event["channel"], event["generation"], event.get("reason"))

    async def end_subscription(self, channel: str, generation: int, reason: str | None):
        """Stop delivering `channel` and send `unsubscribed` (with `reason`, e.g. forbidden),
        unless the connection subscribed again after `generation`.
        """
        state = self.subscribed.get(channel)
        if state is None or state.generation > generation:
            return  # not subscribed here, or subscribed again after the notice was sent
        self.drop_channel(channel)
        await self.send_frame(frames.unsubscribed_frame(channel, reason))

    def drop_channel(self, channel: str):
        """Stop delivering `channel` on this connection."""
        if self.subscribed.pop(channel, None) is not None:
            metrics.SUBSCRIPTIONS.dec()
        self.cursors.discard((self.user.id, channel))

    # Cursors and housekeeping -------------------------------------------------------

    def move_cursor(self, channel: str, ts: int):
        """Note a sent ts; the process persists it within writers.CURSOR_FLUSH_S."""
        self.cursors.note((self.user.id, channel), ts)

    async def keep_alive(self):
        """Re-verify the token, close when it expires or is revoked, and keep this
        connection counted and in its group, for as long as the connection lives.

        Each connection starts at a random phase of the tick and of the heartbeat, so the
        connections opened together (a reconnect wave, a load test) do not all verify
        and catch up in the same instant, stalling deliveries meanwhile."""
        verifier = get_verifier()
        tick = max(0.5, min(5.0, settings.RELAY_AUTH_CACHE_SECONDS / 2, settings.RELAY_HEARTBEAT_SECONDS))
        last_heartbeat = time.monotonic() - random.uniform(0, settings.RELAY_HEARTBEAT_SECONDS)
        await asyncio.sleep(random.uniform(0, tick))
        while not (self.closed or self.released):
            await asyncio.sleep(tick)
            try:
                if self.user.expires_at <= time.time():
                    raise Unauthorized("The token has expired.")
                await verifier.verify(self.user.token)
            except Unauthorized as exc:
                metrics.AUTH_FAILURES.labels("revoked").inc()
                return await self.refuse(RelayError("unauthorized", str(exc)), CLOSE_UNAUTHORIZED)
            except PocketBaseUnavailable:
                pass  # keep the last good verification until PocketBase answers again
            if time.monotonic() - last_heartbeat >= settings.RELAY_HEARTBEAT_SECONDS:
                last_heartbeat = time.monotonic()
                writers.liveness().note((self.user.id, self.connection_id), True)
                heartbeats.behind_checks().note(self.connection_id, self)  # relay_catch_up if behind
                try:
                    await self.channel_layer.group_add(user_group(self.user.id), self.channel_name)
                except REDIS_ERRORS:
                    log.warning("Redis unavailable during the heartbeat", extra=self.log_fields())
