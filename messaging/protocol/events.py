"""Events on NATS JetStream: the `EVENTS` stream and the per-user fan-out.

An event for user U is published on `events.<U>` (U validated, so always one subject
token). Payloads are JSON objects:
- {"k": "m", "m": <message>, "p": <prev ts>}: a live message (p: ts of the message
  before it in its channel, 0 if none; see delivery.py);
- {"k": "m", "m": <message>, "r": true}: a message delivered again by `replay`;
- {"k": "revoked", "c": <channel>, "g": <generation>}: the user lost access to a channel.
"""
import asyncio
import logging
from collections.abc import Awaitable

import orjson
from django.conf import settings
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError

from messaging.protocol.errors import Unavailable

log = logging.getLogger(__name__)

STREAM = "EVENTS"
SUBJECTS = ["events.>"]
QUEUE_GROUP = "relay"
STREAM_MAX_AGE_S = 3600.0  # events older than this are dropped, delivered or not; history remains
PUBLISH_TIMEOUT_S = 5.0


def subject_for(userid: str) -> str:
    """The NATS subject of a user's events (userid already validated)."""
    return f"events.{userid}"


def user_of_subject(subject: str) -> str:
    """The user id of an `events.<user>` subject (the inverse of subject_for)."""
    return subject[len("events."):]


def stream_config(*, replicas: int, max_bytes: int, name: str = STREAM, subjects: list[str] = SUBJECTS) -> api.StreamConfig:
    """The EVENTS stream's configuration (`name` and `subjects` other than EVENTS' only
    for a test's stream of its own): file storage, `replicas` replicas, limits
    retention (events are kept, acked or not, until they are STREAM_MAX_AGE_S old or
    the stream holds `max_bytes` bytes, the oldest going first; publishing is never
    refused for space).

    Limits rather than work-queue retention: a work-queue stream deletes each event from
    its file store when the worker acks it, which cost NATS about 10 µs more per event
    (medians 47 against 36 µs, a quarter of its CPU; docs/performance.md, "Decisions").
    A live message whose event the limits dropped before a worker took it still reaches
    its user's connections: they catch up from the history (heartbeats.py)."""
    return api.StreamConfig(
        name=name,
        subjects=subjects,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        storage=api.StorageType.FILE,
        max_age=STREAM_MAX_AGE_S,
        max_bytes=max_bytes,
        duplicate_window=120.0,
        num_replicas=replicas,
    )


async def ensure_stream(js) -> None:
    """Create the EVENTS stream when it does not exist yet (idempotent, race-safe), as
    `stream_config` with RELAY_EVENTS_REPLICAS replicas (3 on a 3-node NATS cluster) and
    RELAY_EVENTS_MAX_BYTES bytes at most. An existing stream keeps its configuration."""
    try:
        await js.stream_info(STREAM)
        return
    except NotFoundError:
        pass
    config = stream_config(replicas=settings.RELAY_EVENTS_REPLICAS, max_bytes=settings.RELAY_EVENTS_MAX_BYTES)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:  # created by another process in the meantime
        if exc.err_code != 10058:
            raise


async def fan_out(publisher, userids, payload: bytes) -> None:
    """Publish `payload` on `events.<user>` for each user and wait for every JetStream
    ack (start_fan_out, then its acks). Raises Unavailable like start_fan_out."""
    await (await start_fan_out(publisher, userids, payload))


async def start_fan_out(publisher, userids, payload: bytes) -> asyncio.Task:
    """Publish `payload` on `events.<user>` for each user through `publisher` (a
    jetstream_publisher.PipelinedPublisher) without waiting for JetStream's acks;
    returns an asyncio task that completes when all are acked (a task, so nothing is
    left un-awaited when its caller goes away first).

    Events handed over by one call leave before those of a later call. Raises
    Unavailable when NATS cannot take them; handing them to a connection of
    backends.connect_nats takes PUBLISH_TIMEOUT_S at most (its `flush_timeout`). The
    task raises Unavailable when JetStream refuses one or the acks take longer than
    PUBLISH_TIMEOUT_S.
    """
    try:
        acked = await publisher.publish([subject_for(userid) for userid in userids], payload)
    except Exception as exc:  # connection closed or draining
        raise _unavailable(exc) from exc
    task = asyncio.ensure_future(_within_timeout(acked))
    task.add_done_callback(retrieve_outcome)
    return task


async def _within_timeout(acked: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(acked, PUBLISH_TIMEOUT_S)
    except Exception as exc:  # timeouts, refusals
        raise _unavailable(exc) from exc


def retrieve_outcome(task: asyncio.Future) -> None:
    """Mark a finished task's outcome as seen: one nobody awaits any more (its
    connection closed) must not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


def _unavailable(exc: Exception) -> Unavailable:
    log.warning("JetStream publish failed: %r", exc)
    return Unavailable("NATS")


def message_event(message: dict, prev_ts: int) -> bytes:
    """Payload of a live message event."""
    return orjson.dumps({"k": "m", "m": message, "p": prev_ts})


def replay_event(message: dict) -> bytes:
    """Payload of a message delivered again by `replay`."""
    return orjson.dumps({"k": "m", "m": message, "r": True})


def revoked_event(channel: str, generation: int) -> bytes:
    """Payload telling a user's connections that access to `channel` was withdrawn."""
    return orjson.dumps({"k": "revoked", "c": channel, "g": generation})
