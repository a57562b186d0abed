"""The deliver step: a session's subscribed channels, and the sending of their messages.

Everything a connection sends of a channel after its `subscribed` frame goes through
`Delivery.deliver`: live events in the order the sequencing rule makes of them
(sequencing.py), gap fills and catch-ups from the history, replays. Before each batch the
channel's access policy is looked at again (a cache hit on the hot path), so a user who
lost access gets nothing more of it, whatever path the message took.
"""
import logging
import time

from django.db import DatabaseError

from messaging import metrics
from messaging.deliver.link import CATCH_UP
from messaging.deliver.sequencing import Plan, plan
from messaging.protocol import events, frames
from messaging.state.backends import REDIS_ERRORS

log = logging.getLogger(__name__)

CATCH_UP_MAX_DELAY_S = 5.0  # catch-ups retried while Redis fails back off up to this


class Subscribed:
    """What a connection knows of one of its subscriptions: the highest ts it sent
    (`last`, Unix ns, 0 before any) and the registry generation it subscribed at."""

    __slots__ = ("last", "generation")

    def __init__(self, last: int, generation: int):
        self.last = last
        self.generation = generation


class Delivery:
    """The subscribed channels of one session (`subscribed`: channel -> Subscribed) and
    what it sends of them. Uses the session's `send`, `user`, `services`, `link`,
    `log_fields`, and its commands' `lose_access`."""

    def __init__(self, session):
        self.session = session
        self.subscribed: dict[str, Subscribed] = {}
        self.catch_up_due = False
        self.catch_up_delay = 0.0

    def start(self, channel: str, last: int, generation: int) -> None:
        """Deliver `channel` live from now on, after ts `last` (Unix ns; what the
        `subscribed` frame held), as of registry `generation`. Subscribing again keeps
        the higher position and takes the newer generation."""
        state = self.subscribed.get(channel)
        if state is None:
            self.subscribed[channel] = Subscribed(last, generation)
            metrics.SUBSCRIPTIONS.inc()
        else:
            state.last, state.generation = max(state.last, last), generation

    def drop(self, channel: str) -> None:
        """Stop delivering `channel` on this connection (its pending cursor note too)."""
        if self.subscribed.pop(channel, None) is not None:
            metrics.SUBSCRIPTIONS.dec()
        self.session.services.cursors.discard((self.session.user.id, channel))

    async def end(self, channel: str, generation: int, reason: str | None) -> None:
        """Stop delivering `channel` and send `unsubscribed` (with `reason`, e.g.
        forbidden), unless this connection subscribed to it again after `generation`."""
        state = self.subscribed.get(channel)
        if state is None or state.generation > generation:
            return  # not subscribed here, or subscribed again after the notice was sent
        self.drop(channel)
        await self.session.send(frames.unsubscribed_frame(channel, reason))

    async def on_events(self, payloads: list) -> None:
        """Events of this user from NATS, handed over by a relay_worker in one
        channel-layer message (event payloads in arrival order, fanout/worker.py)."""
        for payload in payloads:
            await self.on_event(events.decode(payload))

    async def on_event(self, event: events.Event) -> None:
        """Act on one event: end a subscription (revoked), or deliver, drop or fill a
        message of a subscribed channel."""
        if event.message is None:  # revoked
            self.session.services.forget_policy(event.channel)
            return await self.end(event.channel, event.generation, "forbidden")
        state = self.subscribed.get(event.channel)
        if state is None:
            return
        if event.replay:
            return await self.deliver(event.channel, state, [event.message], replay=True)
        message = event.message
        step = plan(state.last, message["ts"], event.prev_ts)
        if step is Plan.DROP:
            return
        batch = [message]
        if step is Plan.FILL:
            metrics.GAP_FILLS.inc()
            try:
                batch = await self.session.services.history.between(event.channel, state.last, message["ts"]) or batch
            except REDIS_ERRORS:
                # Never deliver past a gap: the catch-up delivers all of it once Redis answers.
                log.warning("Redis unavailable while filling a gap; catching up later",
                            extra=self.session.log_fields(event.channel))
                return self.schedule_catch_up()
        await self.deliver(event.channel, state, batch)

    async def catch_up(self) -> None:
        """Deliver whatever the history holds beyond what this connection sent, for every
        subscribed channel: heals events the channel layer or JetStream lost. Runs after
        a layer outage, and when a heartbeat finds the connection behind the history
        (deliver/behind.py); one pipelined read of the channels' newest ts."""
        self.catch_up_due = False
        channels = list(self.subscribed)
        history = self.session.services.history
        try:
            heads = await history.heads(channels)
            for channel, head in zip(channels, heads):
                state = self.subscribed.get(channel)
                if state is not None and head > state.last:
                    metrics.GAP_FILLS.inc()
                    await self.deliver(channel, state, await history.between(channel, state.last, head))
        except REDIS_ERRORS:
            return self.schedule_catch_up()
        self.catch_up_delay = 0.0

    def schedule_catch_up(self) -> None:
        """Run catch_up again soon (backing off from 0.25 s to CATCH_UP_MAX_DELAY_S while
        it keeps failing), once however often it is asked for before it runs."""
        if self.catch_up_due:
            return
        self.catch_up_due = True
        self.catch_up_delay = min(CATCH_UP_MAX_DELAY_S, max(0.25, self.catch_up_delay * 2))
        self.session.link.put_later(self.catch_up_delay, CATCH_UP)

    async def deliver(self, channel: str, state: Subscribed, batch: list, replay: bool = False) -> None:
        """Send messages of one channel in ts order and note the new position; with
        `replay`, as `replay` message frames, moving nothing. Nothing goes when the user
        may no longer read the channel (may_still_read ends the subscription instead)."""
        if not batch or not await self.may_still_read(channel):
            return
        send = self.session.send
        metrics.MESSAGES_DELIVERED.inc(len(batch))
        if replay:
            for item in batch:
                await send({"type": "message", "message": item, "replay": True})
            return
        now = time.time_ns()
        for item in batch:
            metrics.DELIVERY_LATENCY.observe(max(0, now - item["ts"]) / 1e9)
            await send({"type": "message", "message": item})
        state.last = batch[-1]["ts"]
        self.move_cursor(channel, state.last)

    def move_cursor(self, channel: str, ts: int) -> None:
        """Note a sent ts (Unix ns); the process persists it within cursors.CURSOR_FLUSH_S."""
        self.session.services.cursors.note((self.session.user.id, channel), ts)

    async def may_still_read(self, channel: str) -> bool:
        """Whether the user may still read `channel` by its current policy (at most
        access.POLICY_TTL seconds old). When not, the subscription ends (the session's
        commands.lose_access) and the answer is False. When the database cannot tell, the answer
        is False too, and a catch-up delivers what was held back once it can."""
        services = self.session.services
        try:
            policy = services.cached_policy(channel) or await services.policy_for(channel)
        except DatabaseError as exc:
            log.warning("database unavailable while checking access (%r); catching up later", exc,
                        extra=self.session.log_fields(channel))
            self.schedule_catch_up()
            return False
        if policy.may_read(self.session.user.id):
            return True
        await self.session.commands.lose_access(channel)
        return False
