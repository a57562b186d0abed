"""Requests in flight: each client frame that expects a reply gets a fresh ``ref`` and
waits here until the reply, or the ``error`` answering it, arrives (PROTOCOL.md: replies
echo ``ref``). What a dropped connection left unanswered is sent again on the next one."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed

from .output import Output
from .protocol import encode_frame, subscribe_frame

# Which request each reply type answers, for a reply without a ref.
_REQUEST_OF_REPLY = {"ack": "publish", "subscribed": "subscribe", "history": "history",
                     "unsubscribed": "unsubscribe"}


@dataclasses.dataclass
class Pending:
    """A request frame waiting for its reply (matched by ``ref``)."""

    frame: dict[str, Any]
    future: asyncio.Future
    sent_on: object = None  # the connection it was last sent on
    reply_line: str | None = None  # printed instead of the reply's usual line (not for errors)
    quiet: bool = False  # the client's own request (a gap's history page): its reply is not printed


class Requests:
    """The requests waiting for a reply, by ``ref`` (ints 1, 2, ... for this client).

    ``ws`` is the connection requests go out on: set once the relay welcomed it, None
    while disconnected. Requests made meanwhile wait; :meth:`resend` sends them, and
    whatever was sent on an earlier connection, on the next one.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self.pending: dict[int, Pending] = {}
        self.ws: Any = None
        self._refs = itertools.count(1)

    async def request(self, frame: dict[str, Any], reply_line: str | None = None, *,
                      quiet: bool = False) -> dict[str, Any]:
        """Send ``frame`` with a fresh ``ref`` and return the reply or ``error`` frame;
        ``reply_line``, when given, is printed for the reply instead of its usual line;
        ``quiet``: the reply is not printed at all.

        Raises ``ValueError`` (nothing sent) when the frame is too large to send.
        """
        ref = next(self._refs)
        frame = dict(frame, ref=ref)
        encode_frame(frame)  # raises before anything is registered
        pending = Pending(frame, asyncio.get_running_loop().create_future(), reply_line=reply_line, quiet=quiet)
        self.pending[ref] = pending
        try:
            if self.ws is not None:
                await self.transmit(self.ws, pending)
            else:
                self.output.status(f"* not connected; will send the {frame['type']} when reconnected")
            return await pending.future
        finally:
            self.pending.pop(ref, None)

    async def transmit(self, ws: Any, pending: Pending) -> None:
        """Send ``pending``'s frame on ``ws``; when ``ws`` is closed, it waits for :meth:`resend`."""
        try:
            await ws.send(encode_frame(pending.frame))
            pending.sent_on = ws
        except ConnectionClosed:
            pass  # sent again after reconnecting

    def match(self, frame: dict[str, Any]) -> Pending | None:
        """The request a received frame answers, or None (a message, a push, an unknown ref)."""
        ref = frame.get("ref")
        if isinstance(ref, int) and not isinstance(ref, bool) and ref in self.pending:
            return self.pending[ref]
        # Fallbacks for replies without a ref (the relay should always echo it): an error
        # goes to the only request in flight, if there is exactly one; other replies
        # match by type and channel / client_id.
        if frame.get("type") == "error":
            if frame.get("code") == "unauthorized" or ref is not None:
                return None
            flying = [p for p in self.pending.values() if p.sent_on is self.ws and not p.future.done()]
            return flying[0] if len(flying) == 1 else None
        want = _REQUEST_OF_REPLY.get(frame.get("type"))
        if want is None or frame.get("reason"):
            return None
        for pending in self.pending.values():
            sent = pending.frame
            if sent["type"] != want or pending.future.done() or pending.sent_on is not self.ws:
                continue
            if want == "publish":
                if frame.get("client_id") == sent["client_id"]:
                    return pending
            elif frame.get("channel") == sent["channel"]:
                return pending
        return None

    def forget(self, pending: Pending) -> None:
        """Stop matching replies to ``pending`` (its reply arrived)."""
        self.pending.pop(pending.frame["ref"], None)

    @staticmethod
    def answer(pending: Pending, frame: dict[str, Any]) -> None:
        """Return ``frame`` to whoever awaits ``pending`` (once; later answers are dropped)."""
        if not pending.future.done():
            pending.future.set_result(frame)

    async def resend(self, ws: Any, subscriptions: dict[str, None],
                     position: Callable[[str], int | None]) -> None:
        """On a new connection ``ws``: subscribe to every channel of ``subscriptions`` not
        asked for already, with ``since`` = ``position(channel)`` (Unix ns; None: from
        the cursor), then send every request not yet sent on ``ws``, oldest first (a
        subscribe with its ``since`` moved up to the channel's position)."""
        asked = {p.frame["channel"] for p in self.pending.values() if p.frame["type"] == "subscribe"}
        for channel in subscriptions:
            if channel not in asked:
                ref = next(self._refs)
                frame = subscribe_frame(channel, since=position(channel), ref=ref)
                self.pending[ref] = Pending(frame, asyncio.get_running_loop().create_future())
        for ref in sorted(self.pending):
            pending = self.pending.get(ref)
            if pending is None or pending.sent_on is ws:
                continue
            if pending.frame["type"] == "subscribe":
                since = position(pending.frame["channel"])
                if since is not None and since > pending.frame.get("since", -1):
                    pending.frame["since"] = since
            await self.transmit(ws, pending)
