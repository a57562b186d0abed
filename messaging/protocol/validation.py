"""Plain validation rules of PROTOCOL.md: channel and user ids, text, paging values.

No I/O here. Each function returns the accepted value or raises RelayError with the
code PROTOCOL.md names. Ids are checked here before they ever become part of a NATS
subject (`events.<user>`) or a Redis key (`relay:history:<channel>`).
"""
import re
import unicodedata

from messaging.protocol.errors import RelayError
from messaging.protocol.limits import MAX_CLIENT_ID_CHARS, MAX_INT64, MAX_LIMIT

# One safe NATS subject token and Redis key part: no '.', '*', '>', spaces or ':'.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def is_valid_id(value) -> bool:
    """True when `value` is a str of 1 to 64 characters of `A-Z a-z 0-9 _ -`."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def validate_channel(value) -> str:
    """Return `value` if it is a valid channel id, else raise RelayError(invalid_channel)."""
    if not is_valid_id(value):
        raise RelayError(
            "invalid_channel",
            "A channel is 1 to 64 characters of letters, digits, '_' and '-'.",
        )
    return value


def validate_text(value, max_chars: int) -> str:
    """Return the message text unchanged if PROTOCOL.md accepts it.

    Accepted: a str of 1 to `max_chars` code points that is not blank (only whitespace,
    format or control characters) and has no control character other than \\n \\r \\t
    and no lone surrogate. Raises RelayError(invalid_message) otherwise.
    """
    if not isinstance(value, str):
        raise RelayError("invalid_message", "The message text must be a string.")
    if len(value) > max_chars:
        raise RelayError("invalid_message", f"The message text is longer than {max_chars} characters.")
    blank = True
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise RelayError("invalid_message", "The message text contains a lone surrogate.")
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise RelayError("invalid_message", "The message text contains a control character.")
        if blank and not (ch.isspace() or category in ("Cc", "Cf")):
            blank = False
    if blank:
        raise RelayError("invalid_message", "The message text is empty or blank.")
    return value


def validate_client_id(value, code: str = "bad_frame") -> str | None:
    """Return a publish's `client_id` (None when absent): a str of 1 to 64 characters.

    Raises RelayError(`code`): `bad_frame` on the WebSocket, `bad_request` over HTTP.
    """
    if value is None:
        return None
    if (not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_ID_CHARS
            or any("\ud800" <= ch <= "\udfff" for ch in value)):
        raise RelayError(code, "client_id must be a string of 1 to 64 characters (no lone surrogates).")
    return value


def _check_range(name: str, value: int, code: str) -> int:
    if value < 0 or value > MAX_INT64:
        raise RelayError(code, f"'{name}' must be between 0 and 2^63-1.")
    if name == "limit":
        if value == 0:
            raise RelayError(code, "'limit' must be at least 1.")
        return min(value, MAX_LIMIT)
    return value


def paging_from_json(name: str, value) -> int | None:
    """A WebSocket paging value (`since`, `before`: ts in ns; `limit`: count).

    None (absent or JSON null) stays None. Must be a JSON integer (not a bool, float or
    string) in 0..2^63-1, `limit` at least 1 and clamped to 1000; else RelayError(bad_frame).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RelayError("bad_frame", f"'{name}' must be a JSON integer.")
    return _check_range(name, value, "bad_frame")


def paging_from_query(name: str, value: str | None) -> int | None:
    """An HTTP query paging value: ASCII decimal digits only, else RelayError(bad_request)."""
    if value is None:
        return None
    if _DIGITS_RE.fullmatch(value) is None:
        raise RelayError("bad_request", f"'{name}' must be a non-negative decimal integer.")
    digits = value.lstrip("0") or "0"
    if len(digits) > 19:  # beyond 2^63-1, and before int() meets its digit limit
        raise RelayError("bad_request", f"'{name}' must be between 0 and 2^63-1.")
    return _check_range(name, int(digits), "bad_request")
