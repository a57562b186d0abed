"""The connection to the relay: one WebSocket at a time (``/ws/``, the token as a Bearer
header), kept open by reconnecting with backoff (:func:`.tracking.backoff_delays`,
seconds), logging in again once when a welcomed connection's token is refused (close
4401), and resuming after each ``welcome``: every wanted channel is subscribed again from
its position (Unix ns) and unanswered requests are sent again (:meth:`.Requests.resend`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .display import clean_text, format_clock
from .errors import Fatal, os_reason
from .incoming import Incoming
from .output import Output
from .pending import Requests
from .tracking import ResumeState, backoff_delays

MAX_INCOMING_BYTES = 64 * 2**20  # a page of 1000 long messages can exceed websockets' 1 MiB default
_FATAL_CLOSES = {4401: "the relay refused the token", 4429: "too many connections for this user",
                 4503: "the relay is unavailable", 4413: "a frame was too large"}


def describe_connect_error(exc: BaseException) -> str:
    """A short human reason why opening the WebSocket failed."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        hint = {403: " (Origin refused or not allowed)", 404: " (no /ws/ route at this URL?)"}.get(status, "")
        return f"the handshake was answered with HTTP {status}{hint}"
    if isinstance(exc, TimeoutError):
        return "timed out during the opening handshake"
    if isinstance(exc, OSError):
        return os_reason(exc)
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


class Connection:
    """Keeps a WebSocket to the relay at ``uri`` open and feeds its frames to ``incoming``.

    ``relogin`` (blocking, run in a thread) returns a fresh token; ``open_timeout`` is
    the seconds allowed for the handshake and for the ``welcome`` after it. With
    ``resume_subscriptions`` (interactive mode), every subscription a ``welcome`` lists
    is subscribed too, from its ``last_ts``. :attr:`ready` is set once the first
    ``welcome`` has been handled.
    """

    def __init__(self, uri: str, token: str, *, incoming: Incoming, requests: Requests,
                 state: ResumeState, output: Output, relogin: Callable[[], str] | None = None,
                 open_timeout: float = 10.0, resume_subscriptions: bool = False) -> None:
        self.uri = uri
        self.token = token
        self.incoming = incoming
        self.requests = requests
        self.state = state
        self.output = output
        self.relogin = relogin
        self.open_timeout = open_timeout
        self.resume_subscriptions = resume_subscriptions
        self.ready = asyncio.Event()
        self.closing = False
        self.welcomed_once = False
        self._delays = backoff_delays()
        self._relogged = False  # logged in again since the last welcome

    async def run(self) -> None:
        """Connect, read frames, reconnect with backoff until :meth:`close`; raises
        :class:`.Fatal` when it must stop (the first connect fails, the token is refused
        for good, or the relay closes the first connection)."""
        while not self.closing:
            ws = await self._open()
            if ws is None:
                continue
            no_welcome, last_error = await self._read(ws)
            if self.closing:
                return
            await self._after_close(ws, no_welcome, last_error)

    async def close(self) -> None:
        """Stop reconnecting and close the open connection, if any (best effort)."""
        self.closing = True
        if self.requests.ws is not None:
            try:
                await self.requests.ws.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    async def _open(self) -> Any:
        """A new WebSocket, or None after a failed reconnect (once its backoff delay has
        passed); raises :class:`.Fatal` when the first connect fails."""
        try:
            return await ws_connect(self.uri, additional_headers={"Authorization": f"Bearer {self.token}"},
                                    max_size=MAX_INCOMING_BYTES, open_timeout=self.open_timeout,
                                    close_timeout=2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure gets a one-line reason
            reason = describe_connect_error(exc)
            if not self.welcomed_once:
                raise Fatal(f"cannot connect to the relay at {self.uri}: {reason}") from None
            delay = next(self._delays)
            self.output.status(f"! reconnect failed ({reason}); trying again in {delay:.1f}s")
            await asyncio.sleep(delay)
            return None

    async def _read(self, ws: Any) -> tuple[bool, dict[str, Any] | None]:
        """Handle the frames of ``ws`` until it closes; returns ``(no_welcome, last_error)``:
        whether it was closed for sending no ``welcome`` in time, and the ``error`` frame
        it ended with, if nothing followed that."""
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
                    self.output.emit_lines([f"? unreadable frame: {clean_text(raw[:200], multiline=False)!s}"])
                    continue
                is_error = isinstance(frame, dict) and frame.get("type") == "error"
                last_error = frame if is_error else None
                try:
                    self.incoming.handle(frame)
                except Exception as exc:  # noqa: BLE001 - an odd frame must not end the session
                    self.output.status(f"! could not handle a {str(frame)[:40]!r}... frame ({exc.__class__.__name__}: {exc})")
                if not welcomed and isinstance(frame, dict) and frame.get("type") == "welcome":
                    welcomed, self._relogged = True, False
                    self._delays = backoff_delays()
                    await self._after_welcome(ws)
        except ConnectionClosed:
            pass
        except TimeoutError:
            no_welcome = True
            await ws.close()
        finally:
            self.requests.ws = None
        return no_welcome, last_error

    async def _after_welcome(self, ws: Any) -> None:
        """Resubscribe every wanted channel from its position (with resume_subscriptions,
        also those the welcome listed), then resend unanswered requests."""
        self.requests.ws = ws
        state = self.state
        if self.resume_subscriptions:
            state.adopt_cursors()
        resumed = [f"{c} after {format_clock(state.tracker.position(c))}" if state.tracker.position(c)
                   else c for c in state.subscriptions]
        if self.welcomed_once:
            self.output.status("* reconnected" + (f"; resuming {', '.join(resumed)}" if resumed else ""))
        elif resumed:
            self.output.status(f"* resuming {', '.join(resumed)}")
        await self.requests.resend(ws, state.subscriptions, state.tracker.position)
        self.welcomed_once = True
        self.ready.set()

    async def _after_close(self, ws: Any, no_welcome: bool, last_error: dict[str, Any] | None) -> None:
        """After ``ws`` closed: log in again (a refused token, once per welcome), raise
        :class:`.Fatal` (a refused token, or the first connection lost), or wait the next
        backoff delay before reconnecting."""
        code, reason = ws.close_code, ws.close_reason
        why = f"close {code}" + (f" {reason}" if reason else "")
        if last_error is not None:  # quoted only if nothing followed it
            why += f"; {last_error.get('code')}: {last_error.get('message')}"
        if no_welcome:
            why = f"no welcome frame within {self.open_timeout:g}s"
        if code == 4401 and self.welcomed_once and self.relogin is not None and not self._relogged:
            self.output.status("* the relay refused the token (4401); logging in again")
            self.token = await asyncio.to_thread(self.relogin)
            self._relogged = True
            return
        if code == 4401 or not self.welcomed_once:
            raise Fatal(f"{_FATAL_CLOSES.get(code, 'the relay closed the connection')} ({why})")
        delay = next(self._delays)
        self.output.status(f"! connection lost ({why}); reconnecting in {delay:.1f}s")
        await asyncio.sleep(delay)
