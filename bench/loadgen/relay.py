"""The relay's client: its WebSocket protocol (docs/protocol.md) with a PocketBase
token, pipelined ``publish`` frames matched to their acks by ``ref``."""
from __future__ import annotations

import asyncio
import itertools
import time

import orjson
from websockets.exceptions import ConnectionClosed

from .adapter import Adapter
from .conn import Conn
from .messages import make_text, schedule
from .publisher import Publisher


class RelayConn(Conn):
    """A relay WebSocket: `message` frames are deliveries; replies carrying an integer
    `ref` (a publish's seq: ack or error) go to the publisher, string refs to the
    request() waiting for them."""

    def __init__(self, ws) -> None:
        super().__init__()
        self.ws = ws
        self.waiters: dict = {}
        self.publisher: Publisher | None = None
        self.window: asyncio.Semaphore | None = None
        self.other: list = []
        self.first_ts: int | None = None  # smallest ts acked to this connection's publishes
        self._refs = itertools.count()
        self.task = asyncio.create_task(self._reader())

    async def _reader(self) -> None:
        try:
            async for raw in self.ws:
                t = time.time_ns()
                if raw.startswith('{"type":"message"'):
                    self.deliveries.append((t, raw))
                    continue
                obj = orjson.loads(raw)
                ref = obj.get("ref")
                if isinstance(ref, int) and self.publisher is not None:
                    ok = obj.get("type") == "ack"
                    if ok and (self.first_ts is None or obj["message"]["ts"] < self.first_ts):
                        self.first_ts = obj["message"]["ts"]
                    self.publisher.acked(ref, ok, None if ok else obj)
                    self.window.release()
                elif ref in self.waiters:
                    self.waiters.pop(ref).set_result((t, obj))
                else:
                    self.other.append(obj)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if self.publisher is not None:
                self.publisher.abandon("connection closed")
                self.window.release()  # wake a publish loop waiting for room in the window
            for fut in self.waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    async def request(self, frame: dict, timeout: float = 60.0) -> tuple[int, dict]:
        """Send a frame with a fresh string ref; returns (receive ns, reply)."""
        ref = f"q{next(self._refs)}"
        fut = asyncio.get_running_loop().create_future()
        self.waiters[ref] = fut
        await self.ws.send(orjson.dumps({**frame, "ref": ref}).decode())
        return await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        """Close the WebSocket and stop its reader."""
        await self.ws.close()
        self.task.cancel()


class RelayAdapter(Adapter):
    """The relay over its WebSocket protocol (docs/protocol.md)."""

    ordered_publish = True  # one connection's publish frames are handled in order

    async def connect(self, token: str, attempts: int = 6) -> RelayConn:
        """A connection authenticated with the PocketBase ``token``, once its ``welcome``
        came; an ``unavailable`` refusal is retried ``attempts`` times (0.25 s, doubling),
        any other refusal raises RuntimeError."""
        from websockets.asyncio.client import connect

        for attempt in range(attempts):
            ws = await connect(self.cfg["ws_url"], additional_headers={"Authorization": f"Bearer {token}"},
                               max_size=None, compression=None, ping_interval=None, open_timeout=60,
                               close_timeout=5)
            welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
            if welcome.get("type") == "welcome":
                return RelayConn(ws)
            await ws.close()
            if welcome.get("code") != "unavailable" or attempt == attempts - 1:
                raise RuntimeError(f"relay refused the connection: {welcome}")
            await asyncio.sleep(0.25 * 2 ** attempt)
        raise AssertionError("unreachable")

    async def subscribe(self, conn: RelayConn, channel: str, **extra) -> dict:
        """Subscribe ``conn`` to ``channel`` (``extra``: more fields of the frame, e.g.
        ``since``); returns the ``subscribed`` reply; retries ``unavailable`` up to 5
        times, then (or on any other refusal) raises RuntimeError."""
        for attempt in range(5):
            _, reply = await conn.request({"type": "subscribe", "channel": channel, **extra})
            if reply["type"] == "subscribed":
                return reply
            if reply.get("code") != "unavailable":
                break
            await asyncio.sleep(0.25 * 2 ** attempt)
        raise RuntimeError(f"subscribe refused: {reply}")

    async def open_subscriber(self, idx: int, channel: str) -> RelayConn:
        """User ``idx``'s connection (the ``idx``-th token, cycling), subscribed."""
        tokens = self.cfg["tokens"]
        conn = await self.connect(tokens[idx % len(tokens)])
        await self.subscribe(conn, channel)
        return conn

    async def open_publisher(self, channel: str) -> RelayConn:
        """The publisher user's connection (not subscribed)."""
        return await self.connect(self.cfg["publisher_token"])

    async def publish(self, conn: RelayConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        """``publish`` frames with ``ref`` = seq, at most ``window`` without their ack
        (the connection's reader hands the acks to ``pub``)."""
        conn.publisher, conn.window = pub, asyncio.Semaphore(window)
        async for seq, scheduled in schedule(n, rate):
            await conn.window.acquire()
            if conn.closed:
                return pub.fail_rest(seq, n, "connection closed")
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            try:
                await conn.ws.send(orjson.dumps({"type": "publish", "channel": channel,
                                                 "text": make_text(pub.pid, seq, send_ns, chars), "ref": seq}).decode())
            except ConnectionClosed:
                return pub.fail_rest(seq + 1, n, "connection closed")
        pub.finish_sending(n)

    async def resume(self, conn: RelayConn, channel: str, since: int, page: int) -> tuple[list, int]:
        """Resume ``channel`` after ``since`` (a ts, Unix ns) on ``conn`` as a client does:
        ``subscribe`` with ``since`` and ``limit`` = ``page`` (the newest ``page``, and
        ``truncated``), then ``history`` frames from ``since`` before the subscribed
        page's oldest, forward until ``more`` is false. Returns ([(receive ns, text, ts)]
        in the stream's order, the number of replies); RuntimeError on a refusal."""
        pages = 0
        t, reply = await conn.request({"type": "subscribe", "channel": channel, "since": since, "limit": page})
        if reply["type"] != "subscribed":
            raise RuntimeError(f"subscribe: {reply}")
        pages += 1
        newest = [(t, m["text"], m["ts"]) for m in reply["messages"]]
        older: list = []
        if reply["truncated"] and newest:
            before, cursor = newest[0][2], since
            while True:
                t, reply = await conn.request({"type": "history", "channel": channel, "since": cursor,
                                               "before": before, "limit": page})
                if reply["type"] != "history":
                    raise RuntimeError(f"history: {reply}")
                pages += 1
                older += [(t, m["text"], m["ts"]) for m in reply["messages"]]
                if not reply["messages"] or not reply["more"]:
                    break
                cursor = reply["messages"][-1]["ts"]
        return older + newest, pages

    @staticmethod
    def extract(raw: str) -> tuple[str, int | None]:
        """(text, ts in Unix ns) of a ``message`` frame."""
        message = orjson.loads(raw)["message"]
        return message["text"], message["ts"]
