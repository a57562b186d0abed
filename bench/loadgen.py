"""The load generator: one scenario against one system, in its own process.

Run by the orchestrator as ``python -m bench.loadgen``: the first line of stdin is the
job (JSON: system, scenario, sizes, client config, output path). Before and after its
measured phase it prints ``PHASE <name>`` on stdout and waits for an ``OK`` line on
stdin, so the orchestrator can take CPU and memory snapshots of the servers at exactly
those moments. The result (JSON) goes to the job's ``out`` path.

Every system is driven through the same adapter interface (ADAPTERS): open a connection
for a user (subscribed to a channel or not), publish M messages on a connection
(pipelined, a window of outstanding publishes, or paced at a rate), and record each
delivery with its receive time (``time.time_ns()``, taken before any parsing). Message
texts carry ``<publisher>:<seq>:<send time ns>:`` so deliveries are matched after the run.

An adapter is built from (client config, common knobs) and has:
- ``open_subscriber(idx, channel) -> Conn``: user ``idx``'s connection, subscribed;
- ``open_publisher(channel) -> Conn``: the publisher's connection;
- ``publish(conn, pub, channel, n, window, rate, chars)``: send ``n`` messages of
  ``chars`` characters, at most ``window`` unanswered, or paced at ``rate`` per second
  (``schedule``), recording sends and acceptances on the Publisher ``pub``;
- ``extract(raw) -> (text, ts or None)``: the message text (and the relay's ts, in ns)
  of a recorded delivery;
- ``close()``: release what the adapter holds (HTTP sessions);
- ``ordered_publish``: whether one connection's publishes are one ordered stream.
A Conn records ``deliveries`` ([(receive ns, raw)]) until it is closed.
"""
from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import sys
import time
import traceback

import orjson
import uvloop
from websockets.exceptions import ConnectionClosed

# stdout is the phase protocol; everything else printed goes to stderr.
PROTO = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr

EVENTS = itertools.count()  # global order of sends and acks in this process


async def phase(name: str) -> None:
    """Tell the orchestrator we reached ``name`` and wait for its OK (the event loop
    keeps running meanwhile, so readers keep recording)."""
    PROTO.write(f"PHASE {name}\n")
    PROTO.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line.startswith("OK"):
        raise SystemExit(f"orchestrator did not answer phase {name!r}: {line!r}")


def make_text(pub: int, seq: int, send_ns: int, chars: int) -> str:
    """`<pub>:<seq>:<send ns>:` padded with dots to `chars` characters."""
    return f"{pub}:{seq}:{send_ns}:".ljust(chars, ".")


def parse_text(text: str) -> tuple[int, int, int]:
    """(publisher id, seq, send time in Unix ns) of a make_text text; ValueError if not one."""
    pub, seq, send_ns, _ = text.split(":", 3)
    return int(pub), int(seq), int(send_ns)


async def bounded(coros, limit: int) -> list:
    """``gather`` with at most ``limit`` coroutines running at once (results in order)."""
    sem = asyncio.Semaphore(limit)

    async def run(coro):
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def sleep_until_ns(t_ns: int) -> None:
    """Sleep until the wall clock reads `t_ns` (Unix ns); return at once if it has."""
    delay = (t_ns - time.time_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def schedule(n: int, rate: float | None):
    """Yield `(seq, scheduled_ns)` for seq 0..n-1. With `rate` (messages per second) each
    seq comes at its scheduled time, open loop (scheduled_ns = that Unix ns time, which
    the message carries, so a publisher that falls behind shows as latency); without,
    at once, with scheduled_ns None (the caller stamps the send time itself)."""
    t0 = time.time_ns()
    for seq in range(n):
        if not rate:
            yield seq, None
            continue
        scheduled = t0 + int(seq * 1e9 / rate)
        await sleep_until_ns(scheduled)
        yield seq, scheduled


class Publisher:
    """What one publisher sent: per seq the send time (ns, the one written in the text),
    the order events of its send and of its acceptance (ack), and which were accepted.

    ``ordered=True`` (one ordered stream without per-message acks, or a server that
    handles one connection's publishes in order): acceptance = sending, so message A
    must precede B whenever A was sent first. Otherwise (concurrent HTTP requests)
    A must precede B only when A's response came before B's request was sent.
    """

    def __init__(self, pid: int, ordered: bool) -> None:
        self.pid, self.ordered = pid, ordered
        self.send_ns: dict[int, int] = {}
        self.send_ev: dict[int, int] = {}
        self.ack_ev: dict[int, int] = {}
        self.ok: set[int] = set()
        self.errors: list = []
        self.resolved: set[int] = set()
        self.expected = None
        self.first_send_ns = None
        self.last_ack_ns = None
        self.done = asyncio.Event()

    def sent(self, seq: int, send_ns: int) -> None:
        ev = next(EVENTS)
        self.send_ns[seq], self.send_ev[seq] = send_ns, ev
        if self.first_send_ns is None:
            self.first_send_ns = time.time_ns()
        if self.ordered:
            self.ack_ev[seq] = ev

    def acked(self, seq: int, ok: bool, detail=None) -> None:
        if seq in self.resolved:
            return
        self.resolved.add(seq)
        if not self.ordered:
            self.ack_ev[seq] = next(EVENTS)
        if ok:
            self.ok.add(seq)
        else:
            self.errors.append(detail)
        self.last_ack_ns = time.time_ns()
        if self.expected is not None and len(self.ok) + len(self.errors) >= self.expected:
            self.done.set()

    def abandon(self, reason: str) -> None:
        """The connection is gone: every sent message without an answer is refused."""
        for seq in list(self.send_ns):
            self.acked(seq, False, reason)

    def fail_rest(self, first: int, n: int, reason: str) -> None:
        """Messages ``first``..``n-1`` could not be sent (the connection closed)."""
        self.errors.extend([reason] * max(0, n - first))
        self.abandon(reason)
        self.finish_sending(n)

    def finish_sending(self, n: int) -> None:
        """All n were sent; for unacknowledged streams they all count as accepted."""
        self.expected = n
        if len(self.ok) + len(self.errors) >= n:
            self.done.set()

    async def wait_acks(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except asyncio.TimeoutError:
            missing = self.expected - len(self.ok) - len(self.errors)
            self.errors.extend(["no ack"] * missing)


class Conn:
    """One client connection: ``deliveries`` = [(receive ns, raw frame)], ``pubs`` = the
    publisher ids whose messages it must receive."""

    def __init__(self) -> None:
        self.deliveries: list = []
        self.pubs: list[int] = []
        self.closed = False

    def is_closed(self) -> bool:
        """True when the server closed (or the network dropped) this connection."""
        return self.closed

    async def close(self) -> None:
        pass


# -- relay --------------------------------------------------------------------------------
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
        await self.ws.close()
        self.task.cancel()


class RelayAdapter:
    """The relay over its WebSocket protocol (docs/protocol.md)."""

    ordered_publish = True  # one connection's publish frames are handled in order

    def __init__(self, cfg: dict, common: dict) -> None:
        self.cfg, self.common = cfg, common

    async def connect(self, token: str, attempts: int = 6) -> RelayConn:
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
        for attempt in range(5):
            _, reply = await conn.request({"type": "subscribe", "channel": channel, **extra})
            if reply["type"] == "subscribed":
                return reply
            if reply.get("code") != "unavailable":
                break
            await asyncio.sleep(0.25 * 2 ** attempt)
        raise RuntimeError(f"subscribe refused: {reply}")

    async def open_subscriber(self, idx: int, channel: str) -> RelayConn:
        tokens = self.cfg["tokens"]
        conn = await self.connect(tokens[idx % len(tokens)])
        await self.subscribe(conn, channel)
        return conn

    async def open_publisher(self, channel: str) -> RelayConn:
        return await self.connect(self.cfg["publisher_token"])

    async def publish(self, conn: RelayConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
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

    @staticmethod
    def extract(raw: str) -> tuple[str, int | None]:
        message = orjson.loads(raw)["message"]
        return message["text"], message["ts"]

    async def close(self) -> None:
        pass


# -- the Channels tutorial -----------------------------------------------------------------
class StreamConn(Conn):
    """A connection whose incoming items (WebSocket frames, SSE lines) a reader task
    records as deliveries, those that `is_delivery(item)` accepts, until the stream ends."""

    def __init__(self, items, is_delivery=lambda item: True) -> None:
        super().__init__()
        self.task = asyncio.create_task(self._reader(items, is_delivery))

    async def _reader(self, items, is_delivery) -> None:
        try:
            async for item in items:
                if is_delivery(item):
                    self.deliveries.append((time.time_ns(), item))
        except Exception:  # noqa: BLE001 - connection closed or broken
            pass
        finally:
            self.closed = True


class WsConn(StreamConn):
    """A plain WebSocket whose every frame is a delivery (the tutorial chat)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        super().__init__(ws)

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


class TutorialAdapter:
    """The Channels tutorial chat: ``ws/chat/<room>/``, frames ``{"message": text}``."""

    ordered_publish = True  # one WebSocket is one ordered stream; there are no acks

    def __init__(self, cfg: dict, common: dict) -> None:
        self.cfg, self.common = cfg, common

    async def connect(self, room: str) -> WsConn:
        from websockets.asyncio.client import connect

        ws = await connect(f"{self.cfg['ws_base']}{room}/", origin=self.cfg["origin"], max_size=None,
                           compression=None, ping_interval=None, open_timeout=60, close_timeout=5)
        return WsConn(ws)

    async def open_subscriber(self, idx: int, channel: str) -> WsConn:
        return await self.connect(channel)

    async def open_publisher(self, channel: str) -> WsConn:
        # The tutorial has no publish-only connection: the publisher joins the room too
        # (its own echoes are read and ignored).
        return await self.connect(channel)

    async def publish(self, conn: WsConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        async for seq, scheduled in schedule(n, rate):
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            try:
                await conn.ws.send(json.dumps({"message": make_text(pub.pid, seq, send_ns, chars)}))
            except ConnectionClosed:
                return pub.fail_rest(seq + 1, n, "connection closed")
            pub.acked(seq, True)
        pub.finish_sending(n)

    @staticmethod
    def extract(raw: str) -> tuple[str, None]:
        return orjson.loads(raw)["message"], None

    async def close(self) -> None:
        pass


# -- PocketBase realtime ---------------------------------------------------------------------
class SseConn(StreamConn):
    """A PocketBase realtime (SSE) response whose `data:` lines are deliveries."""

    def __init__(self, resp) -> None:
        self.resp = resp
        super().__init__(resp.content, lambda line: line.startswith(b"data:"))

    async def close(self) -> None:
        self.task.cancel()
        self.resp.close()


class PocketBaseAdapter:
    """PocketBase realtime: SSE ``/api/realtime`` subscribed to the ``messages`` records of
    one room (a filter option on the topic); publishing = creating a record over HTTP."""

    ordered_publish = False  # concurrent HTTP requests: only acked-before-sent pairs are ordered

    def __init__(self, cfg: dict, common: dict) -> None:
        import aiohttp

        self.cfg, self.common = cfg, common
        self.url = cfg["url"]
        timeout = aiohttp.ClientTimeout(total=None, connect=60, sock_read=None)
        self.sse = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                          timeout=aiohttp.ClientTimeout(total=120))
        self._tasks: set = set()  # strong references to in-flight requests

    async def open_subscriber(self, idx: int, channel: str) -> SseConn:
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
        return Conn()  # publishing is plain HTTP

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
        sem = asyncio.Semaphore(window)
        async for seq, scheduled in schedule(n, rate):
            await sem.acquire()
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            task = asyncio.create_task(self._create(pub, seq, channel, make_text(pub.pid, seq, send_ns, chars), sem))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        pub.finish_sending(n)

    @staticmethod
    def extract(raw: bytes) -> tuple[str, None]:
        return orjson.loads(raw[5:])["record"]["text"], None

    async def close(self) -> None:
        await self.sse.close()
        await self.http.close()


# -- NATS core --------------------------------------------------------------------------------
class NatsConn(Conn):
    """A nats-py connection whose subscription's messages are deliveries."""

    def __init__(self, nc) -> None:
        super().__init__()
        self.nc = nc

    async def on_msg(self, msg) -> None:
        self.deliveries.append((time.time_ns(), msg.data))

    def is_closed(self) -> bool:
        return self.nc.is_closed

    async def close(self) -> None:
        await self.nc.close()


class NatsAdapter:
    """nats-py core publish/subscribe on subject ``bench.<channel>``: the transport's ceiling."""

    ordered_publish = True

    def __init__(self, cfg: dict, common: dict) -> None:
        self.cfg, self.common = cfg, common

    async def connect(self) -> NatsConn:
        import nats

        nc = await nats.connect(self.cfg["url"], allow_reconnect=False, connect_timeout=30,
                                max_reconnect_attempts=0)
        return NatsConn(nc)

    async def open_subscriber(self, idx: int, channel: str) -> NatsConn:
        conn = await self.connect()
        await conn.nc.subscribe(f"bench.{channel}", cb=conn.on_msg)
        await conn.nc.flush(timeout=30)
        return conn

    async def open_publisher(self, channel: str) -> NatsConn:
        return await self.connect()

    async def publish(self, conn: NatsConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        subject = f"bench.{channel}"
        async for seq, scheduled in schedule(n, rate):
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            try:
                await conn.nc.publish(subject, make_text(pub.pid, seq, send_ns, chars).encode())
            except Exception as exc:  # noqa: BLE001 - connection closed or broken
                return pub.fail_rest(seq + 1, n, repr(exc))
            pub.acked(seq, True)
        await conn.nc.flush(timeout=60)
        pub.finish_sending(n)

    @staticmethod
    def extract(raw: bytes) -> tuple[str, None]:
        return raw.decode(), None

    async def close(self) -> None:
        pass


ADAPTERS = {"relay": RelayAdapter, "channels_tutorial": TutorialAdapter,
            "pocketbase_realtime": PocketBaseAdapter, "nats_raw": NatsAdapter}


# -- analysis ---------------------------------------------------------------------------------
def percentile(sorted_values: list, q: float):
    """The `q`-th percentile (0-100) of ascending values: the one at index
    round(q/100 * (len-1)); None when empty."""
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def analyse(publishers: dict[int, Publisher], conns: list[Conn], extract, latency: bool = True,
            stopped: str = "complete", end_ns: int | None = None) -> dict:
    """Match deliveries to publishes, per connection: lost (never delivered although the
    stream went quiet), pending (not yet delivered when the deadline ended the run),
    duplicated, reordered, foreign (delivered but never accepted, or garbage), ts order
    (relay), latency (censored when some are pending) and throughput."""
    lat_ns: list[int] = []
    arrivals: list[int] = []
    undelivered = dup = reordered = foreign = ts_violations = delivered = expected_total = 0
    last_t = 0
    for conn in conns:
        expected = {(p, s) for p in conn.pubs for s in publishers[p].ok}
        expected_total += len(expected)
        seen: set = set()
        max_send_ev: dict[int, int] = {}
        last_ts = 0
        for t, raw in conn.deliveries:
            try:
                text, ts = extract(raw)
                pid, seq, send_ns = parse_text(text)
            except Exception:  # noqa: BLE001 - not a benchmark message
                foreign += 1
                continue
            key = (pid, seq)
            if key not in expected:
                foreign += 1
                continue
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            delivered += 1
            arrivals.append(t)
            last_t = max(last_t, t)
            if latency:
                lat_ns.append(t - send_ns)
            pub = publishers[pid]
            high = max_send_ev.get(pid, -1)
            if pub.ack_ev[seq] < high:
                reordered += 1  # arrived after a message it must precede
            max_send_ev[pid] = max(high, pub.send_ev[seq])
            if ts is not None:
                if ts <= last_ts:
                    ts_violations += 1
                last_ts = max(last_ts, ts)
        undelivered += len(expected - seen)
    pending = undelivered if stopped == "deadline" else 0
    first_send = min((p.first_send_ns for p in publishers.values() if p.first_send_ns), default=None)
    # Throughput over the run: to the last delivery, or to the deadline when cut short.
    end = end_ns if pending and end_ns else last_t
    duration = (end - first_send) / 1e9 if first_send and end else None
    lat_ns.sort()
    timeline: list[int] = []  # distinct deliveries per second since the first send
    if first_send:
        for t in arrivals:
            second = max(0, (t - first_send) // 1_000_000_000)
            if second >= len(timeline):
                timeline.extend([0] * (second + 1 - len(timeline)))
            timeline[second] += 1
    ms = lambda v: None if v is None else round(v / 1e6, 3)  # noqa: E731

    def pct(q: float):
        """Percentile over all expected deliveries, pending ones counting as infinitely
        late (None when the percentile falls among them)."""
        total = len(lat_ns) + pending
        if not total:
            return None
        k = min(total - 1, max(0, int(round(q / 100 * (total - 1)))))
        return ms(lat_ns[k]) if k < len(lat_ns) else None

    last_send = max((max(p.send_ns.values()) for p in publishers.values() if p.send_ns), default=None)
    accepted = sum(len(p.ok) for p in publishers.values())
    offered = sum(len(p.send_ns) for p in publishers.values())
    last_ack = max((p.last_ack_ns for p in publishers.values() if p.last_ack_ns), default=None)
    publish_s = (last_ack - first_send) / 1e9 if first_send and last_ack else None
    return {
        "offered": offered,
        "accepted": accepted,
        "publish_errors": sum(len(p.errors) for p in publishers.values()),
        "publish_error_sample": next((p.errors[0] for p in publishers.values() if p.errors), None),
        "publish_s": publish_s,
        "accepted_per_s": accepted / publish_s if publish_s else None,
        "expected_deliveries": expected_total,
        "deliveries": delivered,
        "lost": None if stopped == "deadline" else undelivered,
        "pending": pending,
        "duplicated": dup,
        "reordered": reordered,
        "foreign": foreign,
        "ts_order_violations": ts_violations,
        "duration_s": duration,
        "deliveries_per_s": delivered / duration if duration else None,
        "timeline_per_s": timeline,
        "latency_ms": {
            "p50": pct(50), "p90": pct(90), "p99": pct(99),
            "max": None if pending else ms(lat_ns[-1] if lat_ns else None),
            "mean": ms(sum(lat_ns) / len(lat_ns)) if lat_ns else None,
            # pending deliveries are at least this late (ms): run end - last send
            "censored_above": ms(end_ns - last_send) if pending and end_ns and last_send else None,
        } if latency else None,
    }


async def wait_deliveries(conns: list[Conn], expected: int, quiet_s: float, deadline: float) -> str:
    """Wait until the conns hold ``expected`` deliveries, or none came for ``quiet_s``,
    or the monotonic ``deadline`` passed; returns why it stopped."""
    last_total, last_change = -1, time.monotonic()
    while True:
        total = sum(len(c.deliveries) for c in conns)
        now = time.monotonic()
        if total >= expected:
            return "complete"
        if total != last_total:
            last_total, last_change = total, now
        elif now - last_change >= quiet_s:
            return "quiet"
        if now >= deadline:
            return "deadline"
        await asyncio.sleep(0.02)


# -- scenarios --------------------------------------------------------------------------------
async def close_all(conns, limit: int = 200) -> None:
    """Close every connection, `limit` at a time, each within 10 s, ignoring errors."""
    async def close(c):
        try:
            await asyncio.wait_for(c.close(), 10)
        except Exception:  # noqa: BLE001
            pass

    await bounded([close(c) for c in conns], limit)


async def broadcast(ad, groups: list[dict], n: int, rate: float | None, common: dict) -> dict:
    """Generic live scenario. ``groups``: [{"channel", "subscribers": [user idx],
    "publishers": "separate" | "members"}]. Each publisher publishes ``n`` messages."""
    t_setup = time.monotonic()
    conns: list[Conn] = []
    pub_jobs: list[tuple] = []   # (conn, Publisher, channel)
    extra_conns: list[Conn] = []
    next_pid = itertools.count()
    for group in groups:
        subs = await bounded([ad.open_subscriber(i, group["channel"]) for i in group["subscribers"]],
                             common["connect_concurrency"])
        if group["publishers"] == "separate":
            pconn = await ad.open_publisher(group["channel"])
            extra_conns.append(pconn)
            pids = [next(next_pid)]
            pub_jobs.append((pconn, Publisher(pids[0], ad.ordered_publish), group["channel"]))
        else:
            pids = []
            for sconn in subs:
                pid = next(next_pid)
                pids.append(pid)
                pub_jobs.append((sconn, Publisher(pid, ad.ordered_publish), group["channel"]))
        for sconn in subs:
            sconn.pubs = list(pids)
        conns += subs
    setup_s = time.monotonic() - t_setup
    publishers = {pub.pid: pub for _, pub, _ in pub_jobs}

    gc.collect()
    gc.disable()
    await phase("measure_start")
    deadline = time.monotonic() + common["deadline_s"]
    await asyncio.gather(*(ad.publish(c, pub, ch, n, common["window"], rate, common["message_chars"])
                           for c, pub, ch in pub_jobs))
    await asyncio.gather(*(pub.wait_acks(max(1.0, deadline - time.monotonic())) for pub in publishers.values()))
    expected = sum(len(publishers[p].ok) for c in conns for p in c.pubs)
    stop = await wait_deliveries(conns, expected, common["quiet_s"], deadline)
    end_ns = time.time_ns()
    server_closed = sum(1 for c in conns + extra_conns if c.is_closed())
    await phase("measure_end")
    gc.enable()

    result = analyse(publishers, conns, ad.extract, stopped=stop, end_ns=end_ns)
    result.update({"connections": len(conns) + len(extra_conns), "setup_s": setup_s, "stopped": stop,
                   "server_closed": server_closed})
    await close_all(conns + extra_conns)
    return result


def channel_name(job: dict, suffix: str = "") -> str:
    """The job's channel (or room) name, plus `suffix`."""
    return f"{job['channel']}{suffix}"


def one_channel(job: dict, subscribers: int) -> list[dict]:
    """The group list of a one-channel scenario: `subscribers` subscribers, a separate publisher."""
    return [{"channel": channel_name(job), "subscribers": list(range(subscribers)), "publishers": "separate"}]


async def scenario_fanout(ad, job, sizes, common):
    """1 channel, N subscribers, 1 publisher, M messages as fast as accepted."""
    return await broadcast(ad, one_channel(job, sizes["subscribers"]), sizes["messages"], None, common)


async def scenario_latency(ad, job, sizes, common):
    """1 channel, N subscribers, a publisher paced at `rate` messages/s for `duration_s`."""
    n = int(sizes["rate"] * sizes["duration_s"])
    result = await broadcast(ad, one_channel(job, sizes["subscribers"]), n, float(sizes["rate"]), common)
    result["offered_rate"] = sizes["rate"]
    return result


async def scenario_rooms(ad, job, sizes, common):
    """Rooms of 2 users; each user publishes M and receives the room's 2M."""
    groups = [{"channel": channel_name(job, f"_{r}"), "subscribers": [2 * r, 2 * r + 1], "publishers": "members"}
              for r in range(sizes["rooms"])]
    return await broadcast(ad, groups, sizes["messages_per_user"], None, common)


async def scenario_replay(ad, job, sizes, common):
    """Relay: store N with nobody subscribed, then one subscriber resumes with ``since``
    (subscribe + history pages). PocketBase: list the records (the same paging, by
    seq). Tutorial and NATS have no history: N delivered live to one subscriber."""
    if isinstance(ad, (TutorialAdapter, NatsAdapter)):
        groups = [{"channel": channel_name(job), "subscribers": [0], "publishers": "separate"}]
        result = await broadcast(ad, groups, sizes["messages"], None, common)
        result["mode"] = "live"
        result["resume_s"] = result["duration_s"]
        return result

    n, page = sizes["messages"], sizes["page"]
    channel = channel_name(job)
    pub = Publisher(0, ad.ordered_publish)
    t_setup = time.monotonic()
    pconn = await ad.open_publisher(channel)
    await ad.publish(pconn, pub, channel, n, max(common["window"], 64), None, common["message_chars"])
    await pub.wait_acks(common["deadline_s"])
    setup_s = time.monotonic() - t_setup
    got: list = []  # (receive ns, text, ts) in the order of the resumed sequence
    pages = 0
    extra: list[Conn] = [pconn]

    if isinstance(ad, RelayAdapter):
        sconn = await ad.connect(ad.cfg["replay_token"])
        extra.append(sconn)
        since = pconn.first_ts - 1  # the position just before the first stored message
        gc.collect()
        gc.disable()
        await phase("measure_start")
        t0 = time.time_ns()
        t, reply = await sconn.request({"type": "subscribe", "channel": channel, "since": since, "limit": page})
        if reply["type"] != "subscribed":
            raise RuntimeError(f"subscribe: {reply}")
        pages += 1
        newest = [(t, m["text"], m["ts"]) for m in reply["messages"]]
        older: list = []
        if reply["truncated"] and newest:
            before, cursor = newest[0][2], since
            while True:
                t, reply = await sconn.request({"type": "history", "channel": channel, "since": cursor,
                                                "before": before, "limit": page})
                if reply["type"] != "history":
                    raise RuntimeError(f"history: {reply}")
                pages += 1
                older += [(t, m["text"], m["ts"]) for m in reply["messages"]]
                if not reply["messages"] or not reply["more"]:
                    break
                cursor = reply["messages"][-1]["ts"]
        got = older + newest
        t_end = time.time_ns()
        await phase("measure_end")
        gc.enable()
    else:  # PocketBase: the records API, paged forward by seq
        gc.collect()
        gc.disable()
        await phase("measure_start")
        t0 = time.time_ns()
        last = -1
        while len(got) < len(pub.ok):
            params = {"filter": f"room='{channel}' && seq>{last}", "sort": "seq", "perPage": str(page),
                      "skipTotal": "1"}
            async with ad.http.get(f"{ad.url}/api/collections/messages/records", params=params) as resp:
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
        t_end = time.time_ns()
        await phase("measure_end")
        gc.enable()

    reader = Conn()
    reader.pubs = [0]
    reader.deliveries = [(t, (text, ts)) for t, text, ts in got]
    result = analyse({0: pub}, [reader], lambda raw: raw, latency=False)
    duration = (t_end - t0) / 1e9
    result.update({"mode": "history", "pages": pages, "setup_s": setup_s, "resume_s": duration,
                   "duration_s": duration, "deliveries_per_s": result["deliveries"] / duration if duration else None,
                   "connections": len(extra), "stopped": "complete"})
    await close_all(extra)
    return result


async def scenario_idle(ad, job, sizes, common):
    """N open, subscribed connections; the orchestrator measures RSS before and after."""
    channel = channel_name(job)
    n = sizes["connections"]
    gc.collect()
    await phase("idle_before")
    t0 = time.monotonic()
    conns = await bounded([ad.open_subscriber(i, channel) for i in range(n)], common["connect_concurrency"])
    connect_s = time.monotonic() - t0
    await phase("idle_connected")
    alive = sum(1 for c in conns if not c.is_closed())
    pong_ok = None
    if isinstance(ad, RelayAdapter):  # every 100th connection still answers
        sample = conns[::max(1, n // 20)]
        replies = await asyncio.gather(*(c.request({"type": "ping"}, 30) for c in sample), return_exceptions=True)
        pong_ok = sum(1 for r in replies if not isinstance(r, BaseException) and r[1].get("type") == "pong")
    await close_all(conns)
    return {"connections": n, "alive": alive, "pong_sample_ok": pong_ok, "connect_s": connect_s,
            "connects_per_s": n / connect_s if connect_s else None, "stopped": "complete",
            "lost": 0 if alive == n else n - alive, "duplicated": 0, "reordered": 0}


SCENARIO_FUNCS = {"fanout": scenario_fanout, "rooms": scenario_rooms, "latency": scenario_latency,
                  "replay": scenario_replay, "idle": scenario_idle}


async def run_job(job: dict) -> dict:
    """Run the job's scenario against its system; returns the result record (JSON-able)."""
    adapter = ADAPTERS[job["system"]](job["config"], job["common"])
    try:
        return await SCENARIO_FUNCS[job["scenario"]](adapter, job, job["sizes"], job["common"])
    finally:
        await adapter.close()


def main() -> int:
    """Read the job from stdin, run it, write the result to the job's `out` path; exit code."""
    job = json.loads(sys.stdin.readline())
    started = time.time()
    try:
        result = uvloop.run(run_job(job))
        result["ok"] = True
    except BaseException as exc:  # noqa: BLE001 - reported, never hidden
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["wall_s"] = time.time() - started
    with open(job["out"], "w") as fh:
        json.dump(result, fh)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
