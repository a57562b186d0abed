"""The I/O half: logging in to PocketBase and one WebSocket session with the relay.

:func:`login` gets a token; :class:`RelayClient` keeps the WebSocket open
(reconnecting with backoff, resubscribing from the last ``ts`` seen, in Unix ns),
prints what arrives and runs the scripted or interactive driver. :class:`Fatal` ends
the program with exit code 1.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import itertools
import json
import os
import re
import socket
import sys
import threading
from typing import Any, Callable, TextIO

import requests
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .commands import HELP, CommandError, parse_command
from .display import clean_text, format_clock, format_frame, format_skipped
from .gaps import fill_gap, gap_of
from .protocol import (
    encode_frame,
    history_frame,
    pocketbase_auth_url,
    publish_frame,
    subscribe_frame,
    unsubscribe_frame,
)
from .tracking import MessageTracker, backoff_delays

MAX_INCOMING_BYTES = 64 * 2**20  # a page of 1000 long messages can exceed websockets' 1 MiB default


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
    reply_line: str | None = None  # printed instead of the reply's usual line (not for errors)
    quiet: bool = False  # the client's own request (a gap's history page): its reply is not printed


class RelayClient:
    """The I/O half: one WebSocket to the relay, kept open (reconnecting with backoff).

    Requests (:meth:`subscribe`, :meth:`publish`, ...) get a ``ref`` and return the
    reply frame (or the ``error`` frame answering them). Requests made while
    disconnected, or not answered when the connection dropped, are sent again after
    reconnecting; publishes keep their ``client_id`` so the relay does not store them
    twice. After a reconnect every subscribed channel is subscribed again with
    ``since`` = the last ``ts`` seen, and messages are deduped by id. With
    ``resume_subscriptions`` (interactive mode), every subscription a ``welcome`` lists
    is subscribed too, with ``since`` = its ``last_ts``, as the chat page does. A ``truncated``
    reply to a resume (``since`` or the cursor) is printed after the messages it left
    out, fetched with ``history`` (:mod:`.gaps`), and answers its request only then.
    """

    def __init__(self, uri: str, token: str, *, json_mode: bool = False,
                 relogin: Callable[[], str] | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, open_timeout: float = 10.0,
                 resume_subscriptions: bool = False) -> None:
        self.uri = uri
        self.token = token
        self.json_mode = json_mode
        self.resume_subscriptions = resume_subscriptions
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
        self._held: dict[str, list[tuple[list[str], int]]] = {}  # channel -> (lines, messages) its gap fill prints after
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
        pending = _Pending(frame, asyncio.get_running_loop().create_future(), reply_line=reply_line, quiet=quiet)
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
        """Unsubscribe; returns ``unsubscribed`` or ``error``.

        The relay answers ``unsubscribed`` whether or not there was a subscription, so
        for a channel this client neither subscribed nor was told of (``welcome``) the
        reply is shown as ``* not subscribed to C``. The request is sent all the same:
        another connection of the user may have subscribed since.
        """
        known = channel in self.subscriptions
        self.subscriptions.pop(channel, None)
        return await self.request(unsubscribe_frame(channel),
                                  reply_line=None if known else f"* not subscribed to {clean_text(channel, multiline=False)}")

    async def history(self, channel: str, before: int | None = None) -> dict[str, Any]:
        """Fetch the newest page (before ``before``, Unix ns); returns ``history`` or ``error``."""
        return await self.request(history_frame(channel, before=before))

    async def publish(self, channel: str, text: str, retries: int = 5) -> dict[str, Any]:
        """Publish with a fresh client_id; returns ``ack`` or ``error``.

        Retried with the same client_id (so the relay stores it once), up to ``retries``
        times: ``rate_limited`` after its ``retry_after`` seconds, ``unavailable`` (a
        backend failing over) after a backoff of 0.5 s doubling to 8 s.
        """
        frame = publish_frame(channel, text)
        backoff = 0.5
        for _ in range(retries + 1):
            reply = await self.request(frame)
            if reply.get("type") != "error":
                return reply
            retry_after = reply.get("retry_after")
            if reply.get("code") == "unavailable":
                delay, backoff = backoff, min(backoff * 2, 8.0)
                self.status(f"* the relay is unavailable; sending again in {delay:g}s")
            elif (reply.get("code") == "rate_limited" and isinstance(retry_after, (int, float))
                    and not isinstance(retry_after, bool)):
                delay = min(max(float(retry_after), 0.05), 60.0)
                self.status(f"* rate limited; sending again in {delay:g}s")
            else:
                return reply
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
        gap = None
        counted = 0  # messages printed (counted once they are)
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
                if not self.json_mode and channel not in self._held:
                    gap = gap_of(frame, base)
            counted = len(messages) if self.json_mode else len(shown)
        elif kind == "message":
            message = frame.get("message")
            if isinstance(message, dict):
                if not self.tracker.add(message) and not self.json_mode:
                    return  # a duplicate: already shown
                counted = 1
        elif kind == "history":
            messages = frame.get("messages")
            counted = len(messages) if isinstance(messages, list) else 0
        elif kind == "unsubscribed" and frame.get("reason") and isinstance(frame.get("channel"), str):
            self.subscriptions.pop(frame["channel"], None)
        elif kind == "error" and sent is not None and sent["type"] == "subscribe":
            if frame.get("code") in ("forbidden", "invalid_channel", "rate_limited", "bad_frame"):
                self.subscriptions.pop(sent["channel"], None)

        held = self._held.get(_channel_of(frame))
        if self.json_mode:
            self._emit_json(frame)
        elif kind == "welcome" and self._welcomed_once:
            pass  # reconnected: the status line says so
        elif gap is not None:
            # Printed with the messages it left out, once fetched; its request is answered then.
            self._held[frame["channel"]] = []
            self._spawn(self._print_with_gap(frame, shown, *gap, pending))
            pending, counted = None, 0
        elif pending is not None and pending.quiet:
            counted = 0
        elif held is not None:
            held.append((format_frame(frame, shown=shown), counted))
            counted = 0
        else:
            context = None
            if kind == "error" and sent is not None:
                context = " ".join(str(sent[k]) for k in ("type", "channel") if k in sent)
            if pending is not None and pending.reply_line is not None and kind != "error":
                self._emit([pending.reply_line])
            else:
                self._emit(format_frame(frame, shown=shown, context=context))
        self._count(counted)

        if sent is not None:
            self._pending.pop(sent["ref"], None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(frame)

    async def _print_with_gap(self, frame: dict[str, Any], shown: list[dict[str, Any]], after: int,
                              before: int, pending: _Pending | None) -> None:
        """Print a truncated ``subscribed`` page after the messages it left out (those with
        after < ts < before, Unix ns; :func:`.gaps.fill_gap`), then what arrived for its
        channel meanwhile, and answer its request. When not all of them could be fetched,
        a line in their place names the ``/history`` command that shows more."""
        channel = frame["channel"]
        missed, rest = [], True
        try:
            missed, rest = await fill_gap(lambda f: self.request(f, quiet=True), channel, after, before)
        finally:
            missed = [m for m in missed if self.tracker.add(m, channel)]
            lines = format_frame(dict(frame, truncated=False), shown=missed + shown)
            if rest:
                lines.insert(1 + len(missed), format_skipped(channel, before))
            self._emit(lines)
            self._count(len(missed) + len(shown))
            for held_lines, held_count in self._held.pop(channel, []):
                self._emit(held_lines)
                self._count(held_count)
            if pending is not None and not pending.future.done():
                pending.future.set_result(frame)

    async def _after_welcome(self, ws: Any) -> None:
        """Resubscribe every wanted channel from its position (with resume_subscriptions,
        also those the welcome listed), then resend unanswered requests."""
        self._ws = ws
        if self.resume_subscriptions:
            for channel, last_ts in self._cursors.items():
                if channel not in self.subscriptions:
                    self.subscriptions[channel] = None
                    self.tracker.advance(channel, last_ts)
        resumed = [f"{c} after {format_clock(self.tracker.position(c))}" if self.tracker.position(c)
                   else c for c in self.subscriptions]
        if self._welcomed_once:
            self.status("* reconnected" + (f"; resuming {', '.join(resumed)}" if resumed else ""))
        elif resumed:
            self.status(f"* resuming {', '.join(resumed)}")
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


def _channel_of(frame: dict[str, Any]) -> str | None:
    """The channel whose messages a ``subscribed`` or ``message`` frame carries, else None."""
    if frame.get("type") == "subscribed":
        channel = frame.get("channel")
    elif frame.get("type") == "message" and isinstance(frame.get("message"), dict):
        channel = frame["message"].get("channelid")
    else:
        return None
    return channel if isinstance(channel, str) else None


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
