"""A small command-line client for the relay: the quickest way to see it work.

Run it as ``python -m messaging.client``. It logs in to PocketBase, opens the relay's
WebSocket (``/ws/``, see PROTOCOL.md) and then either

* **interactive mode** (the default): reads commands and chat lines from stdin and
  prints what the relay sends as it arrives, for example::

      [channel1 09:41:03] Bob: hello

* **scripted mode** (when ``--subscribe``, ``--send`` or ``--wait-for`` is given): does
  exactly what the options say, then exits. Exit codes: 0 done, 1 error (login refused,
  relay unreachable, a request answered with an ``error`` frame, bad arguments),
  2 ``--timeout`` reached while still waiting.

Output: stdout carries what the relay said (human lines, or with ``--json`` one JSON
object per received frame); stderr carries what the client itself says (status,
reconnects, help, local errors).

This module is plain Python (no Django): it needs only ``websockets`` and ``requests``.
The pure parts (URL derivation, frame building, command parsing, line formatting,
dedupe/resume bookkeeping) are plain functions and one small class; the I/O lives in
:class:`RelayClient` and :func:`main`.

Units used throughout: ``ts`` values (message timestamps, ``since``, ``before``) are
integers, Unix time in **nanoseconds**, as the relay assigns them.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import collections
import dataclasses
import datetime as _dt
import getpass
import itertools
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterator, TextIO
from urllib.parse import urlsplit, urlunsplit

import requests
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

# --------------------------------------------------------------------------- constants

DEFAULT_RELAY_URL = "http://127.0.0.1:8000"
DEFAULT_POCKETBASE_URL = "http://127.0.0.1:8090"
NS_PER_SECOND = 1_000_000_000
MAX_PAGING_VALUE = 2**63 - 1  # PROTOCOL.md: paging values above this are bad_frame
MAX_FRAME_BYTES = 65_536  # PROTOCOL.md: a bigger frame gets too_large and close 4413
MAX_CLIENT_ID_CHARS = 64
MAX_INCOMING_BYTES = 64 * 2**20  # a page of 1000 long messages can exceed websockets' 1 MiB default
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS_RE = re.compile(r"[0-9]+")
# C0 controls except \t and \n (\r is normalised before), DEL and C1 controls.
_UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HELP = """\
Commands:
  /sub CHANNEL [SINCE]         subscribe and make CHANNEL current (SINCE: Unix ns, exclusive)
  /unsub [CHANNEL]             unsubscribe (default: the current channel)
  /history [CHANNEL] [BEFORE]  show the newest 100 messages (before BEFORE, Unix ns)
  /join CHANNEL                send plain lines to CHANNEL (does not subscribe)
  /help                        this text
  /quit                        leave (Ctrl-D works too)
Any other line is sent to the current channel; start it with // to send a line
that begins with /."""


# ------------------------------------------------------------------ validation helpers

def is_valid_channel(channel: object) -> bool:
    """True when ``channel`` is a str of 1 to 64 characters of ``A-Z a-z 0-9 _ -``.

    This is the relay's own rule (PROTOCOL.md, "channel"); anything else is
    ``invalid_channel`` there.
    """
    return isinstance(channel, str) and _CHANNEL_RE.fullmatch(channel) is not None


def check_channel(channel: object) -> str:
    """Return ``channel`` unchanged if valid, else raise ``ValueError`` with a human sentence."""
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


# ------------------------------------------------------------------------- frames

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


# --------------------------------------------------------------------------- URLs

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


# --------------------------------------------------------------------- formatting

def format_clock(ts_ns: object, *, now_ns: int | None = None, tz: _dt.tzinfo | None = None) -> str:
    """Format a message ``ts`` (int, Unix **nanoseconds**) as local wall-clock time.

    Returns ``"HH:MM:SS"`` when the time falls on the same day as ``now_ns`` (default:
    now), else ``"YYYY-MM-DD HH:MM:SS"``. ``tz`` defaults to the local time zone.
    Sub-second digits are dropped (floor). A missing or non-integer ``ts``, or one out
    of the platform's range, gives ``"??:??:??"``; it never raises.
    """
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
        return "??:??:??"
    try:
        when = _dt.datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz)
        now = _dt.datetime.fromtimestamp((time.time_ns() if now_ns is None else now_ns) // NS_PER_SECOND, tz)
    except (OverflowError, OSError, ValueError):
        return "??:??:??"
    if when.date() == now.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def clean_text(text: object, *, multiline: bool = True) -> str:
    """Make relay-supplied text safe to print on a terminal.

    ``\\r\\n`` and lone ``\\r`` become ``\\n`` (or a space when ``multiline`` is False,
    as are ``\\n`` themselves); other C0/C1 controls and DEL are shown as ``\\xNN``
    escapes so they cannot move the cursor or change colours. Tabs and every other
    character (emoji, combining and bidirectional marks) are kept. Non-strings are
    converted with ``str``.
    """
    s = text if isinstance(text, str) else str(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        s = s.replace("\n", " ")
    return _UNPRINTABLE_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def display_name(message: dict[str, Any]) -> str:
    """The sender as shown: the message's ``name`` if present and non-empty, else its ``userid``."""
    name = message.get("name")
    if not isinstance(name, str) or not name.strip():
        name = message.get("userid")
    return clean_text(name if name not in (None, "") else "?", multiline=False)


def format_message(message: dict[str, Any], *, replay: bool = False, now_ns: int | None = None,
                   tz: _dt.tzinfo | None = None) -> str:
    """One message as a human line: ``[channel1 09:41:03] Bob: hello``.

    ``message`` is a relay message object (``channelid``, ``userid``, ``text``, ``ts``
    in Unix ns, optional ``name``). Replays are tagged ``[channel1 09:41:03 replay]``.
    A multi-line text continues on following lines, indented under the text. The
    result may thus contain newlines but never other control characters.
    """
    channel = clean_text(message.get("channelid", "?"), multiline=False)
    clock = format_clock(message.get("ts"), now_ns=now_ns, tz=tz)
    tag = " replay" if replay else ""
    prefix = f"[{channel} {clock}{tag}] {display_name(message)}: "
    text = message.get("text")
    body = clean_text(text if isinstance(text, str) else "")
    return prefix + ("\n" + " " * len(prefix)).join(body.split("\n"))


def format_error(frame: dict[str, Any], context: str | None = None) -> str:
    """An ``error`` frame as ``! CODE: message`` (plus ``(retry after Ns)`` and a ``[context]``)."""
    code = clean_text(frame.get("code") or "error", multiline=False)
    message = clean_text(frame.get("message") or "", multiline=False)
    line = f"! {code}: {message}" if message else f"! {code}"
    retry = frame.get("retry_after")
    if isinstance(retry, (int, float)) and not isinstance(retry, bool):
        line += f" (retry after {retry:g}s)"
    if context:
        line += f" [{context}]"
    return line


def _oldest_ts(messages: list[Any]) -> int | None:
    stamps = [m.get("ts") for m in messages if isinstance(m, dict)]
    stamps = [t for t in stamps if isinstance(t, int) and not isinstance(t, bool)]
    return min(stamps) if stamps else None


def format_frame(frame: dict[str, Any], *, shown: list[dict[str, Any]] | None = None,
                 context: str | None = None, now_ns: int | None = None,
                 tz: _dt.tzinfo | None = None) -> list[str]:
    """Render one server frame as human lines (each may itself contain newlines).

    ``shown`` replaces the frame's ``messages`` list for ``subscribed`` frames (the
    client passes the messages left after dedupe); ``context`` describes the request
    an ``error`` answers. Lines start with ``*`` for information, ``!`` for errors,
    ``[`` for messages and ``?`` for frames this client does not know. Never raises
    on unexpected shapes.
    """
    kind = frame.get("type")
    fmt = lambda m, replay=False: format_message(m, replay=replay, now_ns=now_ns, tz=tz)  # noqa: E731
    messages = frame.get("messages")
    messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    channel = clean_text(frame.get("channel", "?"), multiline=False)
    if kind == "message":
        message = frame.get("message")
        if not isinstance(message, dict):
            return [f"? {json.dumps(frame, ensure_ascii=False)}"]
        return [fmt(message, bool(frame.get("replay")))]
    if kind == "welcome":
        subs = []
        listed = frame.get("subscriptions")
        for sub in listed if isinstance(listed, list) else []:
            if not isinstance(sub, dict):
                continue
            last = sub.get("last_ts")
            when = f"last {format_clock(last, now_ns=now_ns, tz=tz)}" if last is not None else "nothing seen yet"
            subs.append(f"{clean_text(sub.get('channel', '?'), multiline=False)} ({when})")
        who = clean_text(frame.get("name") or frame.get("userid") or "?", multiline=False)
        userid = clean_text(frame.get("userid") or "?", multiline=False)
        return [f"* welcome {who} (user {userid}); subscriptions: {', '.join(subs) if subs else 'none yet'}"]
    if kind == "subscribed":
        shown = messages if shown is None else shown
        count = f"{len(shown)} message{'' if len(shown) == 1 else 's'}" if shown else "no new messages"
        head = f"* subscribed to {channel}: {count}"
        if frame.get("truncated"):
            oldest = _oldest_ts(messages)
            head += " (older ones skipped"
            head += f"; /history {channel} {oldest} shows them)" if oldest is not None else ")"
        return [head] + [fmt(m) for m in shown]
    if kind == "history":
        head = f"* history of {channel}: {len(messages)} message{'' if len(messages) == 1 else 's'}"
        lines = [head] + [fmt(m) for m in messages]
        oldest = _oldest_ts(messages)
        if frame.get("more") and oldest is not None:
            lines.append(f"* more: /history {channel} {oldest}")
        return lines
    if kind == "ack":
        message = frame.get("message") if isinstance(frame.get("message"), dict) else {}
        where = clean_text(message.get("channelid", "?"), multiline=False)
        when = format_clock(message.get("ts"), now_ns=now_ns, tz=tz)
        return [f"* sent to {where} at {when} (id {clean_text(message.get('id', '?'), multiline=False)})"]
    if kind == "unsubscribed":
        reason = frame.get("reason")
        if reason:
            return [f"! unsubscribed from {channel}: {clean_text(reason, multiline=False)}"]
        return [f"* unsubscribed from {channel}"]
    if kind == "error":
        return [format_error(frame, context)]
    if kind == "pong":
        return ["* pong"]
    return [f"? {clean_text(json.dumps(frame, ensure_ascii=False), multiline=False)}"]


# ----------------------------------------------------------------------- commands

class CommandError(ValueError):
    """A line typed in interactive mode that cannot be run; ``str()`` is the human reason."""


@dataclasses.dataclass(frozen=True)
class Command:
    """A parsed interactive line.

    ``name`` is one of ``say``, ``sub``, ``unsub``, ``history``, ``join``, ``help``,
    ``quit``. ``channel`` is set for all but ``help``/``quit``; ``ts`` is ``since`` for
    ``sub`` and ``before`` for ``history`` (Unix ns, or None); ``text`` is set for ``say``.
    """

    name: str
    channel: str | None = None
    ts: int | None = None
    text: str | None = None


_ALIASES = {
    "sub": "sub", "subscribe": "sub",
    "unsub": "unsub", "unsubscribe": "unsub",
    "history": "history", "hist": "history",
    "join": "join",
    "help": "help", "h": "help", "?": "help",
    "quit": "quit", "q": "quit", "exit": "quit",
}


def _channel_arg(word: str) -> str:
    try:
        return check_channel(word)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _ts_arg(word: str, name: str) -> int:
    if not _DIGITS_RE.fullmatch(word):
        raise CommandError(f"{name} must be a Unix time in nanoseconds (digits only), not {word!r}")
    value = int(word)
    if value > MAX_PAGING_VALUE:
        raise CommandError(f"{name} must be at most {MAX_PAGING_VALUE}")
    return value


def parse_command(line: str, current: str | None = None) -> Command | None:
    """Parse one interactive line (without its newline) into a :class:`Command`.

    * A blank line (only whitespace) gives None: nothing to do.
    * ``/sub CHANNEL [SINCE]``, ``/unsub [CHANNEL]``, ``/history [CHANNEL] [BEFORE]``,
      ``/join CHANNEL``, ``/help``, ``/quit`` (command names are case-insensitive;
      ``/subscribe``, ``/unsubscribe``, ``/q``, ``/exit``, ``/h``, ``/?`` are aliases).
      ``/unsub`` and ``/history`` without a channel use ``current``. SINCE/BEFORE are
      decimal Unix ns.
    * ``//text`` sends ``/text``; any other line is ``say`` with the line exactly as
      typed (no trimming) to ``current``.

    Raises :class:`CommandError` (a ``ValueError``) for an unknown command, a missing
    or invalid argument, too many arguments, or a plain line with no current channel.
    """
    if not line.strip():
        return None
    if line.startswith("/") and not line.startswith("//"):
        words = line[1:].split()
        name = _ALIASES.get(words[0].lower()) if words else None
        if name is None:
            raise CommandError(f"unknown command {line.split()[0]!r}; /help lists the commands")
        args = words[1:]
        usage = {
            "sub": "/sub CHANNEL [SINCE]", "unsub": "/unsub [CHANNEL]",
            "history": "/history [CHANNEL] [BEFORE]", "join": "/join CHANNEL",
            "help": "/help", "quit": "/quit",
        }[name]
        max_args = {"sub": 2, "unsub": 1, "history": 2, "join": 1, "help": 0, "quit": 0}[name]
        if len(args) > max_args:
            raise CommandError(f"too many arguments; usage: {usage}")
        if name in ("help", "quit"):
            return Command(name)
        if name in ("sub", "join") and not args:
            raise CommandError(f"which channel? usage: {usage}")
        if args:
            channel = _channel_arg(args[0])
        elif current is not None:
            channel = current
        else:
            raise CommandError(f"no current channel; usage: {usage}")
        ts = None
        if len(args) == 2:
            ts = _ts_arg(args[1], "SINCE" if name == "sub" else "BEFORE")
        return Command(name, channel=channel, ts=ts)
    text = line[1:] if line.startswith("//") else line
    if current is None:
        raise CommandError("no current channel: /sub CHANNEL or /join CHANNEL first")
    return Command("say", channel=current, text=text)


# ------------------------------------------------------------ dedupe / resume state

class MessageTracker:
    """Remembers, per channel, the highest ``ts`` seen and which message ids were shown.

    Feed it the messages of ``subscribed`` and ``message`` frames (not ``history``
    pages, which neither move the resume point nor count as seen). After a reconnect,
    subscribe again with ``since=position(channel)`` and drop messages for which
    :meth:`add` returns False (the relay may deliver a message again, e.g. a replay).
    Ids are remembered per ``(channel, id)`` (ids are unique within a channel) and
    forgotten oldest first beyond ``max_ids``.
    """

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._ids: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._positions: dict[str, int] = {}

    def add(self, message: dict[str, Any], channel: str | None = None) -> bool:
        """Record ``message``; True if it is new (not seen before), False for a duplicate.

        Also advances the channel's position to the message's ``ts``. ``channel``
        overrides the message's ``channelid`` when that is missing. A message without
        a string ``id`` is always new.
        """
        chan = message.get("channelid") if isinstance(message.get("channelid"), str) else channel
        if chan is None:
            chan = ""
        self.advance(chan, message.get("ts"))
        mid = message.get("id")
        if not isinstance(mid, str):
            return True
        key = (chan, mid)
        if key in self._ids:
            return False
        self._ids[key] = None
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        return True

    def advance(self, channel: str, ts: object) -> None:
        """Move the channel's position to ``ts`` (int, Unix ns) if that is later; never backwards."""
        if isinstance(ts, bool) or not isinstance(ts, int):
            return
        if ts > self._positions.get(channel, -1):
            self._positions[channel] = ts

    def position(self, channel: str) -> int | None:
        """The ``since`` to resume ``channel`` from (Unix ns), or None when nothing is known."""
        return self._positions.get(channel)


def backoff_delays(initial: float = 0.5, factor: float = 2.0, maximum: float = 15.0) -> Iterator[float]:
    """Reconnect delays in seconds: a random 0-``initial``, then ``initial`` doubling up to ``maximum``."""
    yield random.random() * initial
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)


# ============================================================================ I/O

class Fatal(Exception):
    """Ends the program: ``str()`` is printed as ``error: ...`` and the exit code is 1."""


def login(pocketbase_url: str, email: str, password: str, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
    """Log in to PocketBase's ``users`` collection; return ``(token, record)``.

    Raises :class:`Fatal` with a one-line reason on a wrong email/password (HTTP 400),
    an unreachable PocketBase, a timeout or any unexpected answer.
    """
    url = pocketbase_auth_url(pocketbase_url)
    try:
        resp = requests.post(url, json={"identity": email, "password": password}, timeout=timeout)
    except requests.exceptions.Timeout:
        raise Fatal(f"PocketBase at {pocketbase_url} did not answer within {timeout:g}s") from None
    except requests.exceptions.ConnectionError as exc:
        raise Fatal(f"cannot reach PocketBase at {pocketbase_url} ({_os_reason(exc)})") from None
    except requests.exceptions.RequestException as exc:
        raise Fatal(f"cannot use PocketBase URL {pocketbase_url!r}: {exc.__class__.__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if resp.status_code == 400:
        raise Fatal(f"login failed for {email}: wrong email or password"
                    + (f" (PocketBase: {message})" if message else ""))
    if resp.status_code == 404:
        raise Fatal(f"login failed: {url} not found (HTTP 404); is --pocketbase a PocketBase with a users collection?")
    if resp.status_code == 429:
        raise Fatal("login failed: PocketBase is rate-limiting logins (HTTP 429); try again shortly")
    if resp.status_code != 200:
        raise Fatal(f"login failed: PocketBase answered HTTP {resp.status_code}" + (f" ({message})" if message else ""))
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise Fatal(f"login failed: unexpected answer from PocketBase at {pocketbase_url} (no token)")
    record = body.get("record") if isinstance(body.get("record"), dict) else {}
    return body["token"], record


def _os_reason(exc: BaseException) -> str:
    """The OS-level reason behind a connection error, e.g. ``Connection refused``.

    Follows ``__cause__``/``__context__`` (requests and asyncio wrap the socket error),
    then falls back to the first ``[Errno N]`` in the text.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(cur, OSError) and isinstance(cur.errno, int) and cur.errno > 0:
            return os.strerror(cur.errno)
        cur = cur.__cause__ or cur.__context__
    match = re.search(r"\[Errno (-?\d+)\]", str(exc))
    if match:
        number = int(match.group(1))
        return os.strerror(number) if number > 0 else "cannot resolve the host name"
    return str(exc) or exc.__class__.__name__


def describe_connect_error(exc: BaseException) -> str:
    """A short human reason why opening the WebSocket failed."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        hint = {403: " (Origin refused or not allowed)", 404: " (no /ws/ route at this URL?)"}.get(status, "")
        return f"the handshake was answered with HTTP {status}{hint}"
    if isinstance(exc, TimeoutError):
        return "timed out during the opening handshake"
    if isinstance(exc, OSError):
        return _os_reason(exc)
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


@dataclasses.dataclass
class _Pending:
    """A request frame waiting for its reply (matched by ``ref``)."""

    frame: dict[str, Any]
    future: asyncio.Future
    sent_on: object = None  # the connection it was last sent on


class RelayClient:
    """The I/O half: one WebSocket to the relay, kept open (reconnecting with backoff).

    Requests (:meth:`subscribe`, :meth:`publish`, ...) get a ``ref`` and return the
    reply frame (or the ``error`` frame answering them). Requests made while
    disconnected, or not answered when the connection dropped, are sent again after
    reconnecting; publishes keep their ``client_id`` so the relay does not store them
    twice. After a reconnect every subscribed channel is subscribed again with
    ``since`` = the last ``ts`` seen, and messages are deduped by id.
    """

    def __init__(self, uri: str, token: str, *, json_mode: bool = False,
                 relogin: Callable[[], str] | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, open_timeout: float = 10.0) -> None:
        self.uri = uri
        self.token = token
        self.json_mode = json_mode
        self.relogin = relogin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.open_timeout = open_timeout
        self.tracker = MessageTracker()
        self.subscriptions: dict[str, None] = {}  # channels we want, in order
        self.current: str | None = None  # interactive: where plain lines go
        self.user_name: str | None = None
        self.printed = 0  # messages printed (subscribed + message + history)
        self.wait_for: int | None = None  # scripted --wait-for, for the timeout message
        self._cursors: dict[str, int | None] = {}  # from the latest welcome
        self._pending: dict[int, _Pending] = {}
        self._refs = itertools.count(1)
        self._ws = None  # the connection, once welcomed
        self._ready: asyncio.Event | None = None
        self._printed_changed: asyncio.Event | None = None
        self._closing = False
        self._welcomed_once = False
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- output
    def status(self, text: str) -> None:
        """A line from the client itself (stderr)."""
        print(text, file=self.stderr, flush=True)

    def _emit(self, lines: list[str]) -> None:
        for line in lines:
            print(line, file=self.stdout)
        self.stdout.flush()

    def _emit_json(self, frame: Any) -> None:
        encoding = (getattr(self.stdout, "encoding", None) or "ascii").lower()
        ascii_only = not encoding.replace("-", "").startswith("utf")
        print(json.dumps(frame, ensure_ascii=ascii_only, separators=(",", ":")), file=self.stdout, flush=True)

    def _count(self, n: int) -> None:
        if n:
            self.printed += n
            if self._printed_changed is not None:
                self._printed_changed.set()

    # ------------------------------------------------------------- requests
    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send ``frame`` with a fresh ``ref`` and return the reply or ``error`` frame.

        Raises ``ValueError`` (nothing sent) when the frame is too large to send.
        """
        ref = next(self._refs)
        frame = dict(frame, ref=ref)
        encode_frame(frame)  # raises before anything is registered
        pending = _Pending(frame, asyncio.get_running_loop().create_future())
        self._pending[ref] = pending
        try:
            if self._ws is not None:
                await self._transmit(self._ws, pending)
            else:
                self.status(f"* not connected; will send the {frame['type']} when reconnected")
            return await pending.future
        finally:
            self._pending.pop(ref, None)

    async def _transmit(self, ws: Any, pending: _Pending) -> None:
        try:
            await ws.send(encode_frame(pending.frame))
            pending.sent_on = ws
        except ConnectionClosed:
            pass  # sent again after reconnecting

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        """Subscribe (remembered for reconnects); returns ``subscribed`` or ``error``."""
        self.subscriptions[channel] = None
        return await self.request(subscribe_frame(channel, since=since))

    async def unsubscribe(self, channel: str) -> dict[str, Any]:
        """Unsubscribe; returns ``unsubscribed`` or ``error``."""
        self.subscriptions.pop(channel, None)
        return await self.request(unsubscribe_frame(channel))

    async def history(self, channel: str, before: int | None = None) -> dict[str, Any]:
        """Fetch the newest page (before ``before``, Unix ns); returns ``history`` or ``error``."""
        return await self.request(history_frame(channel, before=before))

    async def publish(self, channel: str, text: str, retries: int = 5) -> dict[str, Any]:
        """Publish with a fresh client_id; returns ``ack`` or ``error``.

        A ``rate_limited`` error carrying ``retry_after`` is retried (same client_id)
        after that many seconds, up to ``retries`` times.
        """
        frame = publish_frame(channel, text)
        for _ in range(retries + 1):
            reply = await self.request(frame)
            retry_after = reply.get("retry_after")
            if (reply.get("type") != "error" or reply.get("code") != "rate_limited"
                    or not isinstance(retry_after, (int, float)) or isinstance(retry_after, bool)):
                return reply
            delay = min(max(float(retry_after), 0.05), 60.0)
            self.status(f"* rate limited; sending again in {delay:g}s")
            await asyncio.sleep(delay)
        return reply

    # ------------------------------------------------------------- receiving
    def _match_pending(self, frame: dict[str, Any]) -> _Pending | None:
        ref = frame.get("ref")
        if isinstance(ref, int) and not isinstance(ref, bool) and ref in self._pending:
            return self._pending[ref]
        # Fallbacks for replies without a ref (the relay should always echo it): an error
        # goes to the only request in flight, if there is exactly one; other replies
        # match by type and channel / client_id.
        if frame.get("type") == "error":
            if frame.get("code") == "unauthorized" or ref is not None:
                return None
            flying = [p for p in self._pending.values() if p.sent_on is self._ws and not p.future.done()]
            return flying[0] if len(flying) == 1 else None
        want = {"ack": "publish", "subscribed": "subscribe", "history": "history",
                "unsubscribed": "unsubscribe"}.get(frame.get("type"))
        if want is None or frame.get("reason"):
            return None
        for pending in self._pending.values():
            sent = pending.frame
            if sent["type"] != want or pending.future.done() or pending.sent_on is not self._ws:
                continue
            if want == "publish":
                if frame.get("client_id") == sent["client_id"]:
                    return pending
            elif frame.get("channel") == sent["channel"]:
                return pending
        return None

    def _handle(self, frame: Any) -> None:
        """Update state from one received frame, print it, and resolve its request."""
        if not isinstance(frame, dict):
            if self.json_mode:
                self._emit_json(frame)
            else:
                self._emit([f"? {clean_text(json.dumps(frame), multiline=False)}"])
            return
        kind = frame.get("type")
        pending = self._match_pending(frame)
        sent = pending.frame if pending else None
        shown = None
        if kind == "welcome":
            self.user_name = frame.get("name") or frame.get("userid")
            subs = frame.get("subscriptions") if isinstance(frame.get("subscriptions"), list) else []
            self._cursors = {s["channel"]: s.get("last_ts") for s in subs
                             if isinstance(s, dict) and isinstance(s.get("channel"), str)}
        elif kind == "subscribed":
            channel = frame.get("channel")
            messages = frame.get("messages") if isinstance(frame.get("messages"), list) else []
            shown = [m for m in messages if isinstance(m, dict) and self.tracker.add(m, channel)]
            if isinstance(channel, str) and sent is not None:
                # Where the relay started this page from: our since, else the user's cursor
                # (0 when there was none: the page then held everything there was).
                base = sent.get("since", self._cursors.get(channel))
                self.tracker.advance(channel, 0 if base is None else base)
            self._count(len(messages) if self.json_mode else len(shown))
        elif kind == "message":
            message = frame.get("message")
            if isinstance(message, dict):
                if not self.tracker.add(message) and not self.json_mode:
                    return  # a duplicate: already shown
                self._count(1)
        elif kind == "history":
            messages = frame.get("messages")
            self._count(len(messages) if isinstance(messages, list) else 0)
        elif kind == "unsubscribed" and frame.get("reason") and isinstance(frame.get("channel"), str):
            self.subscriptions.pop(frame["channel"], None)
        elif kind == "error" and sent is not None and sent["type"] == "subscribe":
            if frame.get("code") in ("forbidden", "invalid_channel", "rate_limited", "bad_frame"):
                self.subscriptions.pop(sent["channel"], None)

        if self.json_mode:
            self._emit_json(frame)
        elif kind == "welcome" and self._welcomed_once:
            pass  # reconnected: the status line says so
        else:
            context = None
            if kind == "error" and sent is not None:
                context = " ".join(str(sent[k]) for k in ("type", "channel") if k in sent)
            self._emit(format_frame(frame, shown=shown, context=context))

        if pending is not None:
            self._pending.pop(sent["ref"], None)
            if not pending.future.done():
                pending.future.set_result(frame)

    async def _after_welcome(self, ws: Any) -> None:
        """Resubscribe every wanted channel from its position, then resend unanswered requests."""
        self._ws = ws
        if self._welcomed_once:
            resumed = [f"{c} after {format_clock(self.tracker.position(c))}" if self.tracker.position(c)
                       else c for c in self.subscriptions]
            self.status("* reconnected" + (f"; resuming {', '.join(resumed)}" if resumed else ""))
        asked = {p.frame["channel"] for p in self._pending.values() if p.frame["type"] == "subscribe"}
        for channel in self.subscriptions:
            if channel not in asked:
                ref = next(self._refs)
                frame = subscribe_frame(channel, since=self.tracker.position(channel), ref=ref)
                self._pending[ref] = _Pending(frame, asyncio.get_running_loop().create_future())
        for ref in sorted(self._pending):
            pending = self._pending.get(ref)
            if pending is None or pending.sent_on is ws:
                continue
            if pending.frame["type"] == "subscribe":
                position = self.tracker.position(pending.frame["channel"])
                if position is not None and position > pending.frame.get("since", -1):
                    pending.frame["since"] = position
            await self._transmit(ws, pending)
        self._welcomed_once = True
        self._ready.set()

    # ------------------------------------------------------------- connection
    async def _connection_loop(self) -> None:
        """Connect, read frames, reconnect with backoff; raises :class:`Fatal` when it must stop."""
        delays = backoff_delays()
        relogged = False
        while not self._closing:
            try:
                ws = await ws_connect(self.uri, additional_headers={"Authorization": f"Bearer {self.token}"},
                                      max_size=MAX_INCOMING_BYTES, open_timeout=self.open_timeout,
                                      close_timeout=2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure gets a one-line reason
                reason = describe_connect_error(exc)
                if not self._welcomed_once:
                    raise Fatal(f"cannot connect to the relay at {self.uri}: {reason}") from None
                delay = next(delays)
                self.status(f"! reconnect failed ({reason}); trying again in {delay:.1f}s")
                await asyncio.sleep(delay)
                continue
            welcomed = no_welcome = False
            last_error: dict[str, Any] | None = None
            try:
                while True:
                    if welcomed:
                        raw = await ws.recv()
                    else:
                        raw = await asyncio.wait_for(ws.recv(), timeout=self.open_timeout)
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        self._emit([f"? unreadable frame: {clean_text(raw[:200], multiline=False)!s}"])
                        continue
                    # Quote an error in the close reason only if nothing followed it.
                    is_error = isinstance(frame, dict) and frame.get("type") == "error"
                    last_error = frame if is_error else None
                    try:
                        self._handle(frame)
                    except Exception as exc:  # noqa: BLE001 - an odd frame must not end the session
                        self.status(f"! could not handle a {str(frame)[:40]!r}... frame ({exc.__class__.__name__}: {exc})")
                    if not welcomed and isinstance(frame, dict) and frame.get("type") == "welcome":
                        welcomed, relogged = True, False
                        delays = backoff_delays()
                        await self._after_welcome(ws)
            except ConnectionClosed:
                pass
            except TimeoutError:
                no_welcome = True
                await ws.close()
            finally:
                self._ws = None
            if self._closing:
                return
            code, reason = ws.close_code, ws.close_reason
            why = f"close {code}" + (f" {reason}" if reason else "")
            if last_error is not None:
                why += f"; {last_error.get('code')}: {last_error.get('message')}"
            if no_welcome:
                why = f"no welcome frame within {self.open_timeout:g}s"
            if code == 4401 and self._welcomed_once and self.relogin is not None and not relogged:
                self.status("* the relay refused the token (4401); logging in again")
                self.token = await asyncio.to_thread(self.relogin)
                relogged = True
                continue
            if code == 4401 or not self._welcomed_once:
                what = {4401: "the relay refused the token", 4429: "too many connections for this user",
                        4503: "the relay is unavailable", 4413: "a frame was too large"}
                raise Fatal(f"{what.get(code, 'the relay closed the connection')} ({why})")
            delay = next(delays)
            self.status(f"! connection lost ({why}); reconnecting in {delay:.1f}s")
            await asyncio.sleep(delay)

    async def run(self, driver: Callable[[], Any]) -> int:
        """Run the connection and ``driver()`` (a coroutine function returning an exit code)."""
        self._ready = asyncio.Event()
        self._printed_changed = asyncio.Event()
        conn = asyncio.create_task(self._connection_loop())
        task = asyncio.create_task(driver())
        try:
            done, _ = await asyncio.wait({conn, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            conn.result()  # raises Fatal
            raise Fatal("the connection ended")
        finally:
            self._closing = True
            for t in (task, *self._tasks):
                t.cancel()
            if self._ws is not None:
                try:
                    await self._ws.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            conn.cancel()
            await asyncio.gather(conn, task, *self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.status(f"! {t.exception()}")

        task.add_done_callback(done)
        return task

    # ---------------------------------------------------------------- drivers
    async def scripted(self, subscribe: list[str], sends: list[tuple[str, str]],
                       wait_for: int | None) -> int:
        """Subscribe, send (each awaiting its ack), wait for N messages; return the exit code."""
        self.wait_for = wait_for
        await self._ready.wait()
        for channel in subscribe:
            reply = await self.subscribe(channel)
            if reply.get("type") == "error":
                raise Fatal(f"cannot subscribe to {channel}: {reply.get('code')}: {reply.get('message')}")
        for channel, text in sends:
            try:
                reply = await self.publish(channel, text)
            except ValueError as exc:
                raise Fatal(f"cannot send to {channel}: {exc}") from None
            if reply.get("type") == "error":
                raise Fatal(f"cannot send to {channel}: {reply.get('code')}: {reply.get('message')}")
        if wait_for is not None:
            while self.printed < wait_for:
                self._printed_changed.clear()
                await self._printed_changed.wait()
            return 0
        if not sends:
            await asyncio.Event().wait()  # --subscribe alone: follow until interrupted
        return 0

    async def interactive(self, stdin_fd: int = 0) -> int:
        """Read commands and lines from stdin until /quit or end of input; return 0."""
        await self._ready.wait()
        self.status("* type /help for commands, /sub CHANNEL to start")
        lines = _start_line_reader(stdin_fd)
        while True:
            line = await lines.get()
            if line is None:
                break
            try:
                cmd = parse_command(line, current=self.current)
            except CommandError as exc:
                self.status(f"! {exc}")
                continue
            if cmd is None:
                continue
            if cmd.name == "quit":
                break
            if cmd.name == "help":
                self.status(HELP)
            elif cmd.name == "join":
                self.current = cmd.channel
                note = "" if cmd.channel in self.subscriptions else f" (not subscribed: /sub {cmd.channel} to see replies)"
                self.status(f"* now talking in {cmd.channel}{note}")
            elif cmd.name == "sub":
                self.current = cmd.channel
                self._spawn(self.subscribe(cmd.channel, since=cmd.ts))
            elif cmd.name == "unsub":
                self._spawn(self.unsubscribe(cmd.channel))
            elif cmd.name == "history":
                self._spawn(self.history(cmd.channel, before=cmd.ts))
            elif cmd.name == "say":
                self._spawn(self.publish(cmd.channel, cmd.text))
        if self._tasks:  # let acks and replies to what was typed arrive (piped input quits fast)
            _, late = await asyncio.wait(set(self._tasks), timeout=5)
            if late:
                self.status(f"! leaving without a reply to {len(late)} request(s)")
        return 0


def _start_line_reader(fd: int) -> asyncio.Queue:
    """Read lines from ``fd`` in a daemon thread; the queue yields str lines, then None at EOF.

    Uses ``os.read`` (no Python-level locks, so exiting never waits for the thread) and
    decodes UTF-8 with replacement characters for bad bytes.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: str | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is gone: we are exiting

    def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buffer = ""
        try:
            while True:
                chunk = os.read(fd, 65536)
                buffer += decoder.decode(chunk, final=not chunk)
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    put(line[:-1] if line.endswith("\r") else line)
                if not chunk:
                    break
        except OSError:
            pass
        if buffer:
            put(buffer)
        put(None)

    threading.Thread(target=pump, name="stdin-lines", daemon=True).start()
    return queue


# ============================================================================ CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 1, not argparse's 2 (2 means timeout here)
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}\n")


def _channel_type(value: str) -> str:
    try:
        return check_channel(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count_type(value: str) -> int:
    if not _DIGITS_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected a count (0 or more), not {value!r}")
    return int(value)


def _seconds_type(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see ``--help``)."""
    parser = _Parser(
        prog="python -m messaging.client",
        description="Chat through the relay from a terminal, or script it for demos and tests.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
interactive (default):
  python -m messaging.client --email bob@example.com
  then: /sub channel1, type lines to send them, /help for more

scripted (any of --subscribe, --send, --wait-for):
  python -m messaging.client --email bob@example.com --password X --send channel1 "hi alice"
  python -m messaging.client --email alice@example.com --password X \\
      --subscribe channel1 --wait-for 1 --timeout 10 --json

exit codes: 0 done, 1 error, 2 --timeout reached while still waiting.
stdout: what the relay sent (human lines or --json); stderr: the client's own notes.""",
    )
    parser.add_argument("--url", default=os.environ.get("RELAY_URL") or DEFAULT_RELAY_URL,
                        help="the relay's base URL; the WebSocket is ws(s)://HOST/ws/ "
                             "(default: $RELAY_URL or %(default)s)")
    parser.add_argument("--pocketbase", default=os.environ.get("POCKETBASE_URL") or DEFAULT_POCKETBASE_URL,
                        help="PocketBase base URL (default: $POCKETBASE_URL or %(default)s)")
    parser.add_argument("--email", help="PocketBase user to log in as (asked for when missing)")
    parser.add_argument("--password", help="the user's password (asked for, hidden, when missing)")
    parser.add_argument("--token", help="use this PocketBase auth token instead of logging in")
    parser.add_argument("--subscribe", metavar="CHANNEL", action="append", default=[], type=_channel_type,
                        help="subscribe to CHANNEL and print its messages (repeatable)")
    parser.add_argument("--send", metavar=("CHANNEL", "TEXT"), nargs=2, action="append", default=[],
                        help="publish TEXT to CHANNEL after subscribing, waiting for each ack (repeatable)")
    parser.add_argument("--wait-for", metavar="N", type=_count_type,
                        help="exit 0 once N messages (live or history) have been printed in total")
    parser.add_argument("--timeout", metavar="S", type=_seconds_type,
                        help="give up after S seconds with exit code 2")
    parser.add_argument("--json", action="store_true",
                        help="print every received frame as one JSON line (no dedupe) instead of human lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv``, log in, connect, run; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        for channel, text in args.send:
            try:
                publish_frame(check_channel(channel), text)
            except ValueError as exc:
                parser.error(f"--send {channel!r}: {exc}")
        try:
            uri = ws_url(args.url)
        except ValueError as exc:
            parser.error(f"--url: {exc}")
        scripted = bool(args.subscribe or args.send or args.wait_for is not None)

        relogin = None
        if args.token:
            token = args.token
        else:
            email = args.email
            if not email:
                if not sys.stdin.isatty():
                    raise Fatal("--email is required when stdin is not a terminal")
                email = input("Email: ").strip()
            password = args.password
            if password is None:
                password = getpass.getpass(f"Password for {email}: ")
            login_timeout = 10.0 if deadline is None else max(0.1, min(10.0, deadline - time.monotonic()))
            token, _record = login(args.pocketbase, email, password, timeout=login_timeout)

            def relogin() -> str:
                return login(args.pocketbase, email, password)[0]

        client = RelayClient(uri, token, json_mode=args.json, relogin=relogin)
        if scripted:
            driver = lambda: client.scripted(args.subscribe, [tuple(s) for s in args.send], args.wait_for)  # noqa: E731
        else:
            driver = client.interactive
        return asyncio.run(_run_with_deadline(client, driver, deadline))
    except Fatal as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr, flush=True)
        return 130


async def _run_with_deadline(client: RelayClient, driver: Callable[[], Any], deadline: float | None) -> int:
    """Run the client; exit code 2 when ``deadline`` (time.monotonic) passes first, 143 on SIGTERM."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        main_task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):
        pass
    run = asyncio.create_task(client.run(driver))
    try:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({run}, timeout=remaining)
        if run in done:
            return run.result()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        goal = f" of {client.wait_for}" if client.wait_for is not None else ""
        print(f"error: timed out while still waiting (printed {client.printed}{goal} message(s))",
              file=sys.stderr, flush=True)
        return 2
    except asyncio.CancelledError:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        if terminated:
            return 143
        raise


if __name__ == "__main__":
    sys.exit(main())
