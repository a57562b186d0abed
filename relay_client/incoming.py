"""The handling of incoming frames: what each one changes in the resume state, what is
printed for it, and which request it answers. ``ts`` values are Unix nanoseconds."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Coroutine

from .display import clean_text, format_frame, format_skipped
from .gaps import fill_gap, gap_of
from .output import Output
from .pending import Pending, Requests
from .tracking import ResumeState

_DROPPING_SUBSCRIBE_ERRORS = ("forbidden", "invalid_channel", "rate_limited", "bad_frame")


class Incoming:
    """Handles each frame the relay sends (:meth:`handle`).

    Messages are deduped by id (except with ``json_mode``, where every frame is printed
    as it came). A ``truncated`` reply to a resume (``since`` or the cursor) is printed
    after the messages it left out, fetched with ``history`` (:mod:`.gaps`); what
    arrives for its channel meanwhile is held and printed after it, and its request is
    answered only then. ``spawn`` runs a coroutine as a task of the client.
    """

    def __init__(self, output: Output, requests: Requests, state: ResumeState,
                 spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task]) -> None:
        self.output = output
        self.requests = requests
        self.state = state
        self.spawn = spawn
        self.welcomes = 0  # welcome frames handled: after the first, a reconnect's status line says it
        self._held: dict[str, list[tuple[list[str], int]]] = {}  # channel -> (lines, messages) its gap fill prints after

    def handle(self, frame: Any) -> None:
        """Update state from one received frame (any JSON value), print it, and resolve its request."""
        if not isinstance(frame, dict):
            if self.output.json_mode:
                self.output.emit_json(frame)
            else:
                self.output.emit_lines([f"? {clean_text(json.dumps(frame), multiline=False)}"])
            return
        pending = self.requests.match(frame)
        update = self._update(frame, pending.frame if pending else None)
        if update is None:
            return  # a duplicate: already shown
        answered = self._show(frame, pending, *update)
        if pending is not None:
            self.requests.forget(pending)
            if answered:
                self.requests.answer(pending, frame)

    def _update(self, frame: dict[str, Any], sent: dict[str, Any] | None
                ) -> tuple[list[dict[str, Any]] | None, tuple[int, int] | None, int] | None:
        """Apply ``frame`` (answering ``sent``, if any) to the resume state.

        Returns ``(shown, gap, counted)``: the messages of a ``subscribed`` page to show,
        the ``(after, before)`` it left out (:func:`.gaps.gap_of`) and how many messages
        printing it prints; None for a message already shown.
        """
        kind, state, json_mode = frame.get("type"), self.state, self.output.json_mode
        shown = gap = None
        counted = 0
        if kind == "welcome":
            self.welcomes += 1
            subs = frame.get("subscriptions") if isinstance(frame.get("subscriptions"), list) else []
            state.cursors = {s["channel"]: s.get("last_ts") for s in subs
                             if isinstance(s, dict) and isinstance(s.get("channel"), str)}
        elif kind == "subscribed":
            channel = frame.get("channel")
            messages = frame.get("messages") if isinstance(frame.get("messages"), list) else []
            shown = [m for m in messages if isinstance(m, dict) and state.tracker.add(m, channel)]
            if isinstance(channel, str) and sent is not None:
                # Where the relay started this page from: our since, else the user's cursor
                # (0 when there was none: the page then held everything there was).
                base = sent.get("since", state.cursors.get(channel))
                state.tracker.advance(channel, 0 if base is None else base)
                if not json_mode and channel not in self._held:
                    gap = gap_of(frame, base)
            counted = len(messages) if json_mode else len(shown)
        elif kind == "message":
            message = frame.get("message")
            if isinstance(message, dict):
                if not state.tracker.add(message) and not json_mode:
                    return None
                counted = 1
        elif kind == "history":
            messages = frame.get("messages")
            counted = len(messages) if isinstance(messages, list) else 0
        elif kind == "unsubscribed" and frame.get("reason") and isinstance(frame.get("channel"), str):
            state.subscriptions.pop(frame["channel"], None)
        elif kind == "error" and sent is not None and sent["type"] == "subscribe":
            if frame.get("code") in _DROPPING_SUBSCRIBE_ERRORS:
                state.subscriptions.pop(sent["channel"], None)
        return shown, gap, counted

    def _show(self, frame: dict[str, Any], pending: Pending | None, shown: list[dict[str, Any]] | None,
              gap: tuple[int, int] | None, counted: int) -> bool:
        """Print ``frame`` (or hold it behind its channel's gap fill, or start that fill);
        returns False when its request is answered later, by the fill."""
        kind, out = frame.get("type"), self.output
        held = self._held.get(_channel_of(frame))
        if out.json_mode:
            out.emit_json(frame)
        elif kind == "welcome" and self.welcomes > 1:
            pass  # reconnected: the status line says so
        elif gap is not None:
            self._held[frame["channel"]] = []
            self.spawn(self._print_with_gap(frame, shown, *gap, pending))
            return False
        elif pending is not None and pending.quiet:
            return True
        elif held is not None:
            held.append((format_frame(frame, shown=shown), counted))
            return True
        else:
            sent = pending.frame if pending else None
            context = None
            if kind == "error" and sent is not None:
                context = " ".join(str(sent[k]) for k in ("type", "channel") if k in sent)
            if pending is not None and pending.reply_line is not None and kind != "error":
                out.emit_lines([pending.reply_line])
            else:
                out.emit_lines(format_frame(frame, shown=shown, context=context))
        out.count(counted)
        return True

    async def _print_with_gap(self, frame: dict[str, Any], shown: list[dict[str, Any]], after: int,
                              before: int, pending: Pending | None) -> None:
        """Print a truncated ``subscribed`` page after the messages it left out (those with
        after < ts < before, Unix ns; :func:`.gaps.fill_gap`), then what arrived for its
        channel meanwhile, and answer its request. When not all of them could be fetched,
        a line in their place names the ``/history`` command that shows more."""
        channel = frame["channel"]
        missed, rest = [], True
        try:
            missed, rest = await fill_gap(lambda f: self.requests.request(f, quiet=True), channel, after, before)
        finally:
            missed = [m for m in missed if self.state.tracker.add(m, channel)]
            lines = format_frame(dict(frame, truncated=False), shown=missed + shown)
            if rest:
                lines.insert(1 + len(missed), format_skipped(channel, before))
            self.output.emit_lines(lines)
            self.output.count(len(missed) + len(shown))
            for held_lines, held_count in self._held.pop(channel, []):
                self.output.emit_lines(held_lines)
                self.output.count(held_count)
            if pending is not None:
                self.requests.answer(pending, frame)


def _channel_of(frame: dict[str, Any]) -> str | None:
    """The channel whose messages a ``subscribed`` or ``message`` frame carries, else None."""
    if frame.get("type") == "subscribed":
        channel = frame.get("channel")
    elif frame.get("type") == "message" and isinstance(frame.get("message"), dict):
        channel = frame["message"].get("channelid")
    else:
        return None
    return channel if isinstance(channel, str) else None
