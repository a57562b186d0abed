"""Rendering what the relay sends as terminal lines: messages, errors and other frames.

Everything here is pure and never raises on unexpected shapes; relay-supplied text is
passed through :func:`clean_text` so it cannot move the cursor or change colours.
``ts`` values are integers, Unix time in **nanoseconds**.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from typing import Any

NS_PER_SECOND = 1_000_000_000
# C0 controls except \t and \n (\r is normalised before), DEL and C1 controls.
_UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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


def oldest_ts(messages: list[Any]) -> int | None:
    """The smallest integer ``ts`` (Unix ns) among ``messages``, or None when none has one."""
    stamps = [m.get("ts") for m in messages if isinstance(m, dict)]
    stamps = [t for t in stamps if isinstance(t, int) and not isinstance(t, bool)]
    return min(stamps) if stamps else None


def format_skipped(channel: object, before: object) -> str:
    """The line printed where missed messages of ``channel`` were left out, before the
    page that starts at ``before`` (Unix ns): how to see the newest of them."""
    channel = clean_text(channel, multiline=False)
    return f"* more missed messages of {channel} are not shown here; /history {channel} {before} shows the newest of them"


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
            oldest = oldest_ts(messages)
            head += " (older ones skipped"
            head += f"; /history {channel} {oldest} shows them)" if oldest is not None else ")"
        return [head] + [fmt(m) for m in shown]
    if kind == "history":
        head = f"* history of {channel}: {len(messages)} message{'' if len(messages) == 1 else 's'}"
        lines = [head] + [fmt(m) for m in messages]
        oldest = oldest_ts(messages)
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
