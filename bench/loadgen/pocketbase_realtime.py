"""PocketBase realtime's client: SSE subscribers filtered to one room, publishing by
creating records over HTTP (aiohttp), a window of requests in flight."""
from __future__ import annotations

import asyncio
import json
import time

import orjson

from .adapter import Adapter
from .conn import Conn, StreamConn
from .messages import make_text, schedule
from .publisher import Publisher


class SseConn(StreamConn):
    """A PocketBase realtime (SSE) response whose `data:` lines are deliveries."""

    def __init__(self, resp) -> None:
        self.resp = resp
        super().__init__(resp.content, lambda line: line.startswith(b"data:"))

    async def close(self) -> None:
        """Stop the reader and close the response."""
        self.task.cancel()
        self.resp.close()


class PocketBaseAdapter(Adapter):
    """PocketBase realtime: SSE ``/api/realtime`` subscribed to the ``messages`` records of
    one room (a filter option on the topic); publishing = creating a record over HTTP."""

    ordered_publish = False  # concurrent HTTP requests: only acked-before-sent pairs are ordered

    def __init__(self, cfg: dict, common: dict) -> None:
        import aiohttp

        super().__init__(cfg, common)
        self.url = cfg["url"]
        timeout = aiohttp.ClientTimeout(total=None, connect=60, sock_read=None)
        self.sse = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                          timeout=aiohttp.ClientTimeout(total=120))
        self._tasks: set = set()  # strong references to in-flight requests

    async def open_subscriber(self, idx: int, channel: str) -> SseConn:
        """An SSE connection (no user: the rules are open) whose client id is subscribed
        to the records of room ``channel``; RuntimeError when PocketBase refuses."""
        resp = await self.sse.get(f"{self.url}/api/realtime")
        resp.raise_for_status()
        client_id = None
        while client_id is None:
            line = await asyncio.wait_for(resp.content.readline(), 60)
            if not line:
                raise RuntimeError("PocketBase closed the realtime connection")
            if line.startswith(b"data:"):
                client_id = orjson.loads(line[5:])["clientId"]
        options = json.dumps({"query": {"filter": f"room='{channel}'"}})
        topic = f"messages/*?options={options}"
        async with self.http.post(f"{self.url}/api/realtime",
                                  json={"clientId": client_id, "subscriptions": [topic]}) as sub:
            if sub.status != 204:
                raise RuntimeError(f"PocketBase subscription: HTTP {sub.status}: {await sub.text()}")
        return SseConn(resp)

    async def open_publisher(self, channel: str) -> Conn:
        """No connection: publishing is plain HTTP on the adapter's session."""
        return Conn()

    async def _create(self, pub: Publisher, seq: int, channel: str, text: str, sem: asyncio.Semaphore) -> None:
        try:
            async with self.http.post(f"{self.url}/api/collections/messages/records",
                                      json={"room": channel, "text": text, "seq": seq}) as resp:
                await resp.read()
                pub.acked(seq, resp.status == 200, None if resp.status == 200 else resp.status)
        except Exception as exc:  # noqa: BLE001
            pub.acked(seq, False, repr(exc))
        finally:
            sem.release()

    async def publish(self, conn: Conn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        """One record creation per message (``seq`` stored with it), at most ``window``
        requests in flight; HTTP 200 is an acceptance, anything else an error."""
        sem = asyncio.Semaphore(window)
        async for seq, scheduled in schedule(n, rate):
            await sem.acquire()
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            task = asyncio.create_task(self._create(pub, seq, channel, make_text(pub.pid, seq, send_ns, chars), sem))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        pub.finish_sending(n)

    async def list_records(self, channel: str, page: int, count: int) -> tuple[list, int]:
        """Read the records of room ``channel`` through the records API, ``page`` per
        request, forward by ``seq``, until ``count`` were read or a page is empty.
        Returns ([(receive ns, text, None)] in seq order, the number of requests);
        RuntimeError on an HTTP error."""
        got: list = []
        pages = 0
        last = -1
        while len(got) < count:
            params = {"filter": f"room='{channel}' && seq>{last}", "sort": "seq", "perPage": str(page),
                      "skipTotal": "1"}
            async with self.http.get(f"{self.url}/api/collections/messages/records", params=params) as resp:
                body = await resp.read()
                t = time.time_ns()
                if resp.status != 200:
                    raise RuntimeError(f"PocketBase list: HTTP {resp.status}: {body[:300]!r}")
            items = orjson.loads(body)["items"]
            pages += 1
            if not items:
                break
            got += [(t, item["text"], None) for item in items]
            last = items[-1]["seq"]
        return got, pages

    @staticmethod
    def extract(raw: bytes) -> tuple[str, None]:
        """(text, None) of an SSE ``data:`` line carrying a created record."""
        return orjson.loads(raw[5:])["record"]["text"], None

    async def close(self) -> None:
        """Close both HTTP sessions (SSE and requests)."""
        await self.sse.close()
        await self.http.close()
