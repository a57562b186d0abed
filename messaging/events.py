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

import orjson
from django.conf import settings
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError

from .errors import Unavailable

log = logging.getLogger(__name__)

STREAM = "EVENTS"
SUBJECTS = ["events.>"]
QUEUE_GROUP = "relay"
STREAM_MAX_AGE_S = 3600.0  # undelivered events older than this are dropped; history remains
PUBLISH_TIMEOUT_S = 5.0


def subject_for(userid: str) -> str:
    """The NATS subject of a user's events (userid already validated)."""
    return f"events.{userid}"


def user_of_subject(subject: str) -> str:
    """The user id of an `events.<user>` subject (the inverse of subject_for)."""
    return subject[len("events."):]


async def ensure_stream(js) -> None:
    """Create the EVENTS stream when it does not exist yet (idempotent, race-safe), with
    RELAY_EVENTS_REPLICAS replicas (3 on a 3-node NATS cluster)."""
    try:
        await js.stream_info(STREAM)
        return
    except NotFoundError:
        pass
    config = api.StreamConfig(
        name=STREAM,
        subjects=SUBJECTS,
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        max_age=STREAM_MAX_AGE_S,
        duplicate_window=120.0,
        num_replicas=settings.RELAY_EVENTS_REPLICAS,
    )
    try:
        await js.add_stream(config)
    except BadRequestError as exc:  # created by another process in the meantime
        if exc.err_code != 10058:
            raise


async def fan_out(js, userids, payload: bytes, msg_id: str | None = None) -> None:
    """Publish `payload` on `events.<user>` for each user and wait for every JetStream ack.

    Publishes are pipelined (publish_async) and acks awaited together. `msg_id`, when
    given, lets JetStream drop a repeat of the same (event, user) within its duplicate
    window. Raises Unavailable when NATS does not ack within PUBLISH_TIMEOUT_S.
    """
    if not userids:
        return
    try:
        futures = []
        for userid in userids:
            headers = {"Nats-Msg-Id": f"{msg_id}:{userid}"} if msg_id else None
            futures.append(await js.publish_async(subject_for(userid), payload, headers=headers))
        await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)
    except Unavailable:
        raise
    except Exception as exc:  # timeouts, connection closed, no responders
        log.warning("JetStream publish failed: %r", exc)
        raise Unavailable("NATS") from exc


def message_event(message: dict, prev_ts: int) -> bytes:
    """Payload of a live message event."""
    return orjson.dumps({"k": "m", "m": message, "p": prev_ts})


def replay_event(message: dict) -> bytes:
    """Payload of a message delivered again by `replay`."""
    return orjson.dumps({"k": "m", "m": message, "r": True})


def revoked_event(channel: str, generation: int) -> bytes:
    """Payload telling a user's connections that access to `channel` was withdrawn."""
    return orjson.dumps({"k": "revoked", "c": channel, "g": generation})
