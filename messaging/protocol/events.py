"""The events of NATS JetStream's `EVENTS` stream: their subjects, and their payloads
encoded and decoded in one place (PROTOCOL.md "Wiring").

An event for user U is published on `events.<U>` (U validated, so always one subject
token). Payloads are JSON objects:
- {"k": "m", "m": <message>, "p": <prev ts>}: a live message (p: ts of the message
  before it in its channel, 0 if none; deliver/sequencing.py);
- {"k": "m", "m": <message>, "r": true}: a message delivered again by `replay`;
- {"k": "revoked", "c": <channel>, "g": <generation>}: the user lost access to a channel.
"""
from dataclasses import dataclass

import orjson

SUBJECT_PREFIX = "events."


def subject_for(userid: str) -> str:
    """The NATS subject of a user's events (userid already validated)."""
    return SUBJECT_PREFIX + userid


def user_of_subject(subject: str) -> str:
    """The user id of an `events.<user>` subject (the inverse of subject_for)."""
    return subject[len(SUBJECT_PREFIX):]


def message_event(message: dict, prev_ts: int) -> bytes:
    """Payload of a live message event (`prev_ts`: Unix ns of the message before it in
    its channel, 0 if none)."""
    return orjson.dumps({"k": "m", "m": message, "p": prev_ts})


def replay_event(message: dict) -> bytes:
    """Payload of a message delivered again by `replay`."""
    return orjson.dumps({"k": "m", "m": message, "r": True})


def revoked_event(channel: str, generation: int) -> bytes:
    """Payload telling a user's connections that access to `channel` was withdrawn."""
    return orjson.dumps({"k": "revoked", "c": channel, "g": generation})


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: a live message (`message`, `prev_ts`), a replayed one
    (`message`, `replay`), or a revocation (`channel`, `generation`; `message` None)."""

    channel: str
    message: dict | None = None
    prev_ts: int = 0
    replay: bool = False
    generation: int = 0


def decode(payload: bytes | str) -> Event:
    """The Event of a payload made by the functions above. Raises orjson.JSONDecodeError
    or KeyError for anything else (the relay's own events are never anything else)."""
    data = orjson.loads(payload)
    if data["k"] == "revoked":
        return Event(data["c"], generation=data["g"])
    message = data["m"]
    return Event(message["channelid"], message, data.get("p", 0), bool(data.get("r")))
