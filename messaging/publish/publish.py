"""The publish path shared by the WebSocket and the HTTP API.

validate (done by the caller) -> access -> store in Redis (ts, idempotency, rate limit,
fan-out list in one atomic script) -> publish `events.<user>` on JetStream for each
subscriber who may read the channel -> return the message for the ack. A channel's
database row is noted only once a publish was stored (records.note_channel), so a
refused or rate-limited publish writes nothing. The ack is only sent after both the
history and JetStream accepted it (PROTOCOL.md guarantees 1 and 6).
"""
import asyncio

from messaging import metrics
from messaging.protocol import events
from messaging.protocol.errors import RelayError, Unavailable
from messaging.publish import jetstream
from messaging.state import access, backends, records
from messaging.state.backends import REDIS_ERRORS
from messaging.state.history import RateLimited


async def publish(user, channel: str, text: str, client_id: str | None) -> tuple[dict, bool]:
    """Publish a validated message as `user` (a verified PocketBase user) and wait until
    JetStream acked its fan-out (start_publish, then its `acked`).

    Returns (message, created): created is False for a repeated client_id, which
    returns the first message. Raises RelayError like start_publish.
    """
    message, created, acked = await start_publish(user, channel, text, client_id)
    await acked
    return message, created


async def start_publish(user, channel: str, text: str, client_id: str | None) -> tuple[dict, bool, asyncio.Task]:
    """Store a validated message as `user` and hand its fan-out to NATS without waiting
    for JetStream's acks, so a connection can take its next frame meanwhile.

    Returns (message, created, acked): `acked`, an asyncio task, completes once
    JetStream acked every event of the fan-out, and only then may the message be
    acknowledged to its sender (PROTOCOL.md guarantees 1 and 6); it raises Unavailable
    otherwise. Messages started one after the other get increasing ts (Unix ns) and
    reach NATS in that order. Raises RelayError: forbidden, rate_limited (with
    retry_after seconds), unavailable (Redis or NATS down).
    """
    policy = await access.check_publish(channel, user.id)
    be = backends.get()
    publisher = await be.publisher()  # Unavailable before anything is stored when NATS is down
    try:
        stored = await be.history.append(channel, user.id, user.name, text, client_id)
    except RateLimited as exc:
        raise RelayError(
            "rate_limited", f"Too many messages; retry in {exc.retry_after:g} s.", retry_after=exc.retry_after
        ) from exc
    except REDIS_ERRORS as exc:
        raise Unavailable("Redis") from exc
    if not policy.recorded:
        records.note_channel(channel)
    message = stored.message
    # A repeat publishes the events again (the first fan-out may have failed);
    # connections drop what they already delivered (deliver/sequencing.py), so no JetStream
    # de-duplication header is needed: without it, fan-out costs 3 % less CPU.
    # Only readers get the event, even when a subscription of someone who lost access
    # is still in the fan-out list (ops/access_changes.py removes it within seconds).
    acked = await jetstream.start_fan_out(
        publisher, policy.readers(stored.subscribers), events.message_event(message, stored.prev_ts)
    )
    if not stored.duplicate:
        acked.add_done_callback(_count_if_acked)
    return message, not stored.duplicate, acked


def _count_if_acked(task: asyncio.Future) -> None:
    """Count a new message as published once JetStream acked its fan-out."""
    if not task.cancelled() and task.exception() is None:
        metrics.MESSAGES_PUBLISHED.inc()
