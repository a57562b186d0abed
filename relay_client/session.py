"""One session with the relay: :class:`RelayClient` puts the parts together (the
connection, the requests in flight, the handling of incoming frames, the output) and
offers the requests the drivers (:mod:`.drivers`) make."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Coroutine, TextIO

from .connection import Connection
from .display import clean_text
from .errors import Fatal
from .incoming import Incoming
from .output import Output
from .pending import Requests
from .protocol import history_frame, publish_frame, subscribe_frame, unsubscribe_frame
from .tracking import ResumeState


class RelayClient:
    """One WebSocket to the relay, kept open (reconnecting with backoff).

    Requests (:meth:`subscribe`, :meth:`publish`, ...) get a ``ref`` and return the
    reply frame (or the ``error`` frame answering them). Requests made while
    disconnected, or not answered when the connection dropped, are sent again after
    reconnecting; publishes keep their ``client_id`` so the relay does not store them
    twice. After a reconnect every subscribed channel is subscribed again with
    ``since`` = the last ``ts`` seen (Unix ns), and messages are deduped by id. With
    ``resume_subscriptions`` (interactive mode), every subscription a ``welcome`` lists
    is subscribed too, with ``since`` = its ``last_ts``, as the chat page does. A
    ``truncated`` reply to a resume (``since`` or the cursor) is printed after the
    messages it left out, fetched with ``history`` (:mod:`.gaps`), and answers its
    request only then.
    """

    def __init__(self, uri: str, token: str, *, json_mode: bool = False,
                 relogin: Callable[[], str] | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, open_timeout: float = 10.0,
                 resume_subscriptions: bool = False) -> None:
        self.output = Output(stdout, stderr, json_mode=json_mode)
        self.state = ResumeState()
        self.requests = Requests(self.output)
        self.incoming = Incoming(self.output, self.requests, self.state, self.spawn)
        self.connection = Connection(uri, token, incoming=self.incoming, requests=self.requests,
                                     state=self.state, output=self.output, relogin=relogin,
                                     open_timeout=open_timeout, resume_subscriptions=resume_subscriptions)
        self.tasks: set[asyncio.Task] = set()

    @property
    def printed(self) -> int:
        """Messages printed so far (``subscribed``, ``message`` and ``history``)."""
        return self.output.printed

    @property
    def subscriptions(self) -> dict[str, None]:
        """The channels subscribed to (or to be, after a reconnect), in order."""
        return self.state.subscriptions

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        """Subscribe (remembered for reconnects), from after ``since`` (Unix ns) when given;
        returns ``subscribed`` or ``error``."""
        self.state.subscriptions[channel] = None
        return await self.requests.request(subscribe_frame(channel, since=since))

    async def unsubscribe(self, channel: str) -> dict[str, Any]:
        """Unsubscribe; returns ``unsubscribed`` or ``error``.

        The relay answers ``unsubscribed`` whether or not there was a subscription, so
        for a channel this client neither subscribed nor was told of (``welcome``) the
        reply is shown as ``* not subscribed to C``. The request is sent all the same:
        another connection of the user may have subscribed since.
        """
        known = channel in self.state.subscriptions
        self.state.subscriptions.pop(channel, None)
        return await self.requests.request(
            unsubscribe_frame(channel),
            reply_line=None if known else f"* not subscribed to {clean_text(channel, multiline=False)}")

    async def history(self, channel: str, before: int | None = None) -> dict[str, Any]:
        """Fetch the newest page (before ``before``, Unix ns); returns ``history`` or ``error``."""
        return await self.requests.request(history_frame(channel, before=before))

    async def publish(self, channel: str, text: str, retries: int = 5) -> dict[str, Any]:
        """Publish with a fresh client_id; returns ``ack`` or ``error``.

        Retried with the same client_id (so the relay stores it once), up to ``retries``
        times: ``rate_limited`` after its ``retry_after`` seconds, ``unavailable`` (a
        backend failing over) after a backoff of 0.5 s doubling to 8 s. Raises
        ``ValueError`` for a channel or text the relay would refuse.
        """
        frame = publish_frame(channel, text)
        backoff = 0.5
        for _ in range(retries + 1):
            reply = await self.requests.request(frame)
            if reply.get("type") != "error":
                return reply
            retry_after = reply.get("retry_after")
            if reply.get("code") == "unavailable":
                delay, backoff = backoff, min(backoff * 2, 8.0)
                self.output.status(f"* the relay is unavailable; sending again in {delay:g}s")
            elif (reply.get("code") == "rate_limited" and isinstance(retry_after, (int, float))
                    and not isinstance(retry_after, bool)):
                delay = min(max(float(retry_after), 0.05), 60.0)
                self.output.status(f"* rate limited; sending again in {delay:g}s")
            else:
                return reply
            await asyncio.sleep(delay)
        return reply

    async def run(self, driver: Callable[[], Any]) -> int:
        """Run the connection and ``driver()`` (a coroutine function returning an exit code);
        raises :class:`.Fatal` when the connection ends first."""
        conn = asyncio.create_task(self.connection.run())
        task = asyncio.create_task(driver())
        try:
            done, _ = await asyncio.wait({conn, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            conn.result()  # raises Fatal
            raise Fatal("the connection ended")
        finally:
            for t in (task, *self.tasks):
                t.cancel()
            await self.connection.close()
            conn.cancel()
            await asyncio.gather(conn, task, *self.tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``coro`` as a task of this session (cancelled when :meth:`run` ends); an
        exception it ends with is printed as a status line."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.output.status(f"! {t.exception()}")

        task.add_done_callback(done)
        return task
