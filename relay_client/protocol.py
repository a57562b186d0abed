"""The client's side of the relay's wire protocol (PROTOCOL.md): frames and URLs.

Builders return client frames as dicts, checked the way the relay would check them
(raising ``ValueError`` with a human sentence instead of earning an ``error`` frame);
:func:`encode_frame` turns one into the JSON text sent on the WebSocket. Paging values
(``since``, ``before``) are integers, Unix time in **nanoseconds**.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MAX_PAGING_VALUE = 2**63 - 1  # PROTOCOL.md: paging values above this are bad_frame
MAX_FRAME_BYTES = 65_536  # PROTOCOL.md: a bigger frame gets too_large and close 4413
MAX_CLIENT_ID_CHARS = 64
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def is_valid_channel(value: object) -> bool:
    """True when ``value`` is a valid channel id by the protocol's rule (PROTOCOL.md,
    "channel"): a str of 1 to 64 characters of ``A-Z a-z 0-9 _ -``.

    The client checks the public contract on its own (it imports nothing of the
    server); the relay answers any other channel with ``invalid_channel``.
    """
    return isinstance(value, str) and _CHANNEL_RE.fullmatch(value) is not None


def check_channel(channel: object) -> str:
    """Return ``channel`` unchanged if valid, else raise ``ValueError`` with a human sentence.

    Valid is the protocol's rule, :func:`is_valid_channel`: a str of 1 to 64 characters
    of ``A-Z a-z 0-9 _ -``. Anything else is ``invalid_channel`` at the relay.
    """
    if not is_valid_channel(channel):
        raise ValueError(
            f"invalid channel {channel!r}: use 1 to 64 characters of A-Z a-z 0-9 _ -"
        )
    return channel  # type: ignore[return-value]


def check_paging(name: str, value: object, *, minimum: int = 0) -> int:
    """Validate one paging value (``since``, ``before``: minimum 0; ``limit``: minimum 1).

    The relay wants a JSON integer (not a bool, float or string) between ``minimum``
    and 2**63-1; anything else would be answered with ``bad_frame``. Returns the value;
    raises ``ValueError`` naming ``name`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < minimum or value > MAX_PAGING_VALUE:
        raise ValueError(f"{name} must be between {minimum} and {MAX_PAGING_VALUE}, not {value}")
    return value


def new_client_id() -> str:
    """A fresh ``client_id`` for ``publish``: 32 lowercase hex digits (uuid4).

    The relay stores nothing new for a repeated ``(user, channel, client_id)`` within
    10 minutes, so re-sending a publish with the same id after a reconnect is safe.
    """
    return uuid.uuid4().hex


def _with_ref(frame: dict[str, Any], ref: object) -> dict[str, Any]:
    if ref is not None:
        if isinstance(ref, bool) or not isinstance(ref, (str, int, float)):
            raise ValueError(f"ref must be a JSON string or number, not {ref!r}")
        frame["ref"] = ref
    return frame


def subscribe_frame(channel: str, since: int | None = None, limit: int | None = None,
                    ref: object = None) -> dict[str, Any]:
    """Build ``{"type": "subscribe", "channel": C, "since"?: T, "limit"?: N, "ref"?: R}``.

    ``since`` (Unix ns, exclusive) and ``limit`` are left out when None: the relay then
    resumes after the user's cursor, or sends the newest ``limit`` (default 100).
    Raises ``ValueError`` for an invalid channel or paging value.
    """
    frame: dict[str, Any] = {"type": "subscribe", "channel": check_channel(channel)}
    if since is not None:
        frame["since"] = check_paging("since", since)
    if limit is not None:
        frame["limit"] = check_paging("limit", limit, minimum=1)
    return _with_ref(frame, ref)


def unsubscribe_frame(channel: str, ref: object = None) -> dict[str, Any]:
    """Build ``{"type": "unsubscribe", "channel": C, "ref"?: R}``; ``ValueError`` on a bad channel."""
    return _with_ref({"type": "unsubscribe", "channel": check_channel(channel)}, ref)


def publish_frame(channel: str, text: str, client_id: str | None = None,
                  ref: object = None) -> dict[str, Any]:
    """Build ``{"type": "publish", "channel": C, "text": X, "client_id": K, "ref"?: R}``.

    ``client_id`` is always included: a fresh :func:`new_client_id` when None, else it
    must be a str of 1 to 64 characters. ``text`` is sent exactly as given (no
    trimming); it must be a non-empty str (the relay judges the rest: blank text,
    control characters and length are ``invalid_message`` there).
    Raises ``ValueError`` for a bad channel, text or client_id.
    """
    if not isinstance(text, str) or text == "":
        raise ValueError("text must be a non-empty string")
    if client_id is None:
        client_id = new_client_id()
    elif not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID_CHARS:
        raise ValueError(f"client_id must be a string of 1 to {MAX_CLIENT_ID_CHARS} characters")
    frame = {"type": "publish", "channel": check_channel(channel), "text": text,
             "client_id": client_id}
    return _with_ref(frame, ref)


def history_frame(channel: str, before: int | None = None, since: int | None = None,
                  limit: int | None = None, ref: object = None) -> dict[str, Any]:
    """Build ``{"type": "history", "channel": C, "before"?: T, "since"?: T, "limit"?: N, "ref"?: R}``.

    ``before`` and ``since`` are Unix ns, both exclusive; without ``since`` the page is
    the newest ``limit`` messages (before ``before``), oldest first.
    Raises ``ValueError`` for an invalid channel or paging value.
    """
    frame: dict[str, Any] = {"type": "history", "channel": check_channel(channel)}
    if before is not None:
        frame["before"] = check_paging("before", before)
    if since is not None:
        frame["since"] = check_paging("since", since)
    if limit is not None:
        frame["limit"] = check_paging("limit", limit, minimum=1)
    return _with_ref(frame, ref)


def ping_frame(ref: object = None) -> dict[str, Any]:
    """Build ``{"type": "ping", "ref"?: R}`` (answered with ``pong``)."""
    return _with_ref({"type": "ping"}, ref)


def encode_frame(frame: dict[str, Any]) -> str:
    """Serialise a client frame to the JSON text sent on the WebSocket.

    Raises ``ValueError`` when the frame is over 65,536 bytes of UTF-8 (the relay would
    answer ``too_large`` and close the connection with 4413) or when it contains text
    that cannot be encoded (lone surrogates, e.g. from undecodable command-line bytes).
    """
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("the text is not valid Unicode (it contains a lone surrogate)") from None
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"too large: {size} bytes; the relay accepts at most {MAX_FRAME_BYTES} per frame")
    return text


def ws_url(base_url: str) -> str:
    """Derive the relay's WebSocket URL from its HTTP base URL.

    ``http://host:8000`` -> ``ws://host:8000/ws/``; ``https://relay.example`` ->
    ``wss://relay.example/ws/``; a path prefix is kept (``http://h/chat`` ->
    ``ws://h/chat/ws/``), as is a query string. A URL without a scheme is taken as
    http. ``ws://`` and ``wss://`` URLs are used as given (``/ws/`` is added only when
    they have no path). Raises ``ValueError`` for another scheme or a missing host.
    """
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not parts.netloc or not parts.hostname:
        raise ValueError(f"no host in URL {base_url!r}")
    if scheme in ("ws", "wss"):
        path = parts.path if parts.path not in ("", "/") else "/ws/"
    elif scheme in ("http", "https"):
        scheme = "wss" if scheme == "https" else "ws"
        path = parts.path.rstrip("/") + "/ws/"
    else:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {base_url!r}: use http:// or https://")
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def pocketbase_auth_url(base_url: str) -> str:
    """``http://127.0.0.1:8090`` -> ``http://127.0.0.1:8090/api/collections/users/auth-with-password``.

    A path prefix is kept; a URL without a scheme is taken as http.
    """
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/") + "/api/collections/users/auth-with-password"
