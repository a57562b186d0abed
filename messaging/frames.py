"""WebSocket frames: parsing client frames into commands, building server frames.

Plain functions, no I/O. Parsing raises RelayError with the PROTOCOL.md code; the
consumer answers it with an `error` frame and keeps the connection open.
"""
import json
from dataclasses import dataclass

import orjson

from .errors import RelayError
from .validation import DEFAULT_LIMIT, paging_from_json, validate_channel, validate_client_id, validate_text

MAX_FRAME_BYTES = 65_536  # PROTOCOL.md: a message over 64 KiB gets too_large and close 4413
TYPES = ("subscribe", "unsubscribe", "publish", "history", "ping")


@dataclass
class Command:
    """A validated client frame. `ref` is echoed in the reply (str, int or float)."""

    type: str
    ref: object = None
    channel: str | None = None
    text: str | None = None
    client_id: str | None = None
    since: int | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT


def frame_too_large(text: str) -> bool:
    """True when a text frame is over MAX_FRAME_BYTES of UTF-8 (cheap for short frames)."""
    if len(text) * 4 <= MAX_FRAME_BYTES:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES


def decode(text: str):
    """Parse JSON text. orjson first; the stdlib parser as fallback accepts what orjson
    refuses but JSON allows (lone surrogate escapes), so text validation can name them.
    Raises RelayError(bad_frame) for text that is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RelayError("bad_frame", "The frame is not valid JSON.") from exc


def parse_ref(obj) -> object:
    """The frame's `ref` (None when absent); RelayError(bad_frame) unless a string or number."""
    ref = obj.get("ref")
    if ref is None or (isinstance(ref, (str, int, float)) and not isinstance(ref, bool)):
        return ref
    raise RelayError("bad_frame", "'ref' must be a string or a number.")


def parse_command(obj, max_chars: int) -> Command:
    """Validate a decoded client frame into a Command.

    Raises RelayError: bad_frame (not an object, unknown or missing type, bad paging
    value or client_id), invalid_channel, invalid_message.
    """
    if not isinstance(obj, dict):
        raise RelayError("bad_frame", "A frame must be a JSON object.")
    ref = parse_ref(obj)
    kind = obj.get("type")
    if kind not in TYPES:
        raise RelayError("bad_frame", f"Unknown or missing frame type; expected one of {', '.join(TYPES)}.")
    command = Command(kind, ref)
    if kind == "ping":
        return command
    command.channel = validate_channel(obj.get("channel"))
    if kind == "publish":
        command.text = validate_text(obj.get("text"), max_chars)
        command.client_id = validate_client_id(obj.get("client_id"))
    elif kind in ("subscribe", "history"):
        command.since = paging_from_json("since", obj.get("since"))
        limit = paging_from_json("limit", obj.get("limit"))
        command.limit = DEFAULT_LIMIT if limit is None else limit
        if kind == "history":
            command.before = paging_from_json("before", obj.get("before"))
    return command


def with_ref(frame: dict, ref) -> dict:
    """The frame with `ref` echoed when the client sent one."""
    if ref is not None:
        frame["ref"] = ref
    return frame


def error_frame(error: RelayError, ref=None) -> dict:
    """An `error` frame for a RelayError (retry_after only for the publish rate)."""
    frame = {"type": "error", "code": error.code, "message": error.message}
    if error.retry_after is not None:
        frame["retry_after"] = error.retry_after
    return with_ref(frame, ref)


def safe_ref(obj) -> object:
    """The frame's ref when it is a valid one, else None (for echoing in errors)."""
    try:
        return parse_ref(obj) if isinstance(obj, dict) else None
    except RelayError:
        return None
