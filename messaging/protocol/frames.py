"""WebSocket frames: parsing client frames into commands, building server frames.

Plain functions, no I/O. Parsing raises RelayError with the PROTOCOL.md code; the
consumer answers it with an `error` frame and keeps the connection open.
"""
import json
from dataclasses import dataclass

import orjson

from messaging.protocol.errors import RelayError
from messaging.protocol.limits import DEFAULT_LIMIT, MAX_FRAME_BYTES, MAX_INT64
from messaging.protocol.validation import paging_from_json, validate_channel, validate_client_id, validate_text

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


def frame_too_large(data: str | bytes) -> bool:
    """True when a frame is over MAX_FRAME_BYTES: bytes as they are, text as UTF-8
    (cheap for short frames)."""
    if isinstance(data, bytes):
        return len(data) > MAX_FRAME_BYTES
    if len(data) * 4 <= MAX_FRAME_BYTES:
        return False
    return len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES


def _exact_number(text: str):
    """A JSON number the stdlib parser found: an int64 as int, anything else (floats,
    larger integers) as its exact source text, so an echoed `ref` is byte-for-byte the
    number sent and paging values that are not int64 fail validation."""
    if "." not in text and "e" not in text and "E" not in text:
        value = int(text)
        if -(2**63) <= value <= MAX_INT64:
            return value
    return orjson.Fragment(text)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def decode(text: str | bytes, code: str = "bad_frame"):
    """Parse a JSON frame or body; RelayError(`code`) when it is not JSON (RFC 8259).

    orjson first. The stdlib parser handles what orjson refuses or would round but JSON
    allows: lone surrogate escapes (text validation then names them) and numbers beyond
    int64 or float precision (kept exact, see _exact_number). NaN and Infinity are not
    JSON; bytes must be UTF-8.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RelayError(code, "The body is not UTF-8.") from exc
    try:
        value = orjson.loads(text)
        if not (isinstance(value, dict) and isinstance(value.get("ref"), float)):
            return value
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text, parse_float=_exact_number, parse_int=_exact_number, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise RelayError(code, "The frame is not valid JSON." if code == "bad_frame" else "The body is not valid JSON.") from exc


def has_lone_surrogate(text: str) -> bool:
    """True when `text` holds a lone UTF-16 surrogate (possible from JSON escapes)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def parse_ref(obj) -> object:
    """The frame's `ref` (None when absent): a string without lone surrogates or a
    number (echoed exactly); else RelayError(bad_frame)."""
    ref = obj.get("ref")
    if ref is None or isinstance(ref, orjson.Fragment) or (isinstance(ref, (int, float)) and not isinstance(ref, bool)):
        return ref
    if isinstance(ref, str) and not has_lone_surrogate(ref):
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


def unsubscribed_frame(channel: str, reason: str | None = None) -> dict:
    """An `unsubscribed` frame, with `reason` (e.g. "forbidden": access withdrawn) when given."""
    frame = {"type": "unsubscribed", "channel": channel}
    if reason:
        frame["reason"] = reason
    return frame
