"""Attacks on what one daphne spends per client (docs/reliability.md, "Attacks"), each
on the running relay:

- WebSocket clients that stop reading while frames are sent to them (live fan-out of a
  busy channel; history pages asked for and never read): closed with 4408 once more
  than RELAY_MAX_OUTGOING_BYTES wait for them, their buffers freed while they still do
  not read, daphne's RSS bounded; a reconnect with `since` then misses nothing;
- request bodies of any size (a huge Content-Length, an endless chunked body, with or
  without `Expect: 100-continue`): 413 `too_large` before the body is read;
- requests whose headers or body dribble in, and idle keep-alive connections: closed
  RELAY_HTTP_READ_TIMEOUT seconds after the connection opened or its last response,
  while a normal request and an open WebSocket are served as usual.

Memory is daphne's RSS (psutil), sampled from before the attack to after it.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import threading
import uuid

import psutil
import pytest
import requests
from websockets.asyncio.client import connect

from localservers import wait_until

from .wsclient import Client

pytestmark = pytest.mark.e2e

MAX_OUTGOING = 2**20  # RELAY_MAX_OUTGOING_BYTES of this module's relay
READ_TIMEOUT_S = 2  # RELAY_HTTP_READ_TIMEOUT of this module's relay
MAX_BODY = 2**20  # overrides.daphne_http.MAX_BODY_BYTES
BIG_TEXT = "\U0001f600" * 4000  # the longest text (RELAY_MAX_MESSAGE_CHARS): 16,000 bytes of UTF-8
MiB = 2**20


@pytest.fixture(scope="module")
def relay_env():
    return {"RELAY_MAX_OUTGOING_BYTES": str(MAX_OUTGOING), "RELAY_HTTP_READ_TIMEOUT": str(READ_TIMEOUT_S),
            "RELAY_MAX_CONNECTIONS_PER_USER": "100"}


def new_channel(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def metric(relay, name: str) -> float:
    """A metric of daphne's /metrics (0 when it is not there)."""
    text = requests.get(f"{relay.http_url}metrics", timeout=15).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def peers_of(pid: int) -> set[int]:
    """The client ports of the TCP connections process `pid` holds open."""
    return {c.raddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.raddr}


class RssPeak:
    """daphne's RSS (bytes), sampled in a thread while the block runs: `base` when it
    starts, `peak` the highest sample, `last` the latest."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.base = self.peak = self.last = self.process.memory_info().rss
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self):
        while not self.stopped.wait(0.01):
            self.last = self.process.memory_info().rss
            self.peak = max(self.peak, self.last)

    def __enter__(self) -> "RssPeak":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def summary(self) -> str:
        return (f"daphne RSS {self.base / MiB:.0f} MiB, peak {self.peak / MiB:.0f} MiB "
                f"(+{(self.peak - self.base) / MiB:.0f}), now {self.last / MiB:.0f} MiB")


async def open_unlimited(relay, user) -> Client:
    """A client past its welcome that takes frames of any size (a page can be 17 MB)."""
    c = Client(await connect(relay.ws_url, additional_headers=dict(user.headers), max_size=None, open_timeout=15))
    assert (await c.recv())["type"] == "welcome"
    return c


async def until(check, timeout: float, what: str):
    """wait_until in a thread, so this event loop's connections keep reading meanwhile."""
    return await asyncio.to_thread(wait_until, check, timeout, what=what)


async def publish_all(ws_url: str, token: str, channel: str, n: int) -> list[dict]:
    """Publish `n` messages of BIG_TEXT, pipelined, reading the acks meanwhile (a
    publisher that did not read its acks would itself be a client that stops reading);
    returns the acked messages in order."""
    c = await Client.open(ws_url, token)

    async def send_all():
        for i in range(n):
            await c.send({"type": "publish", "channel": channel, "text": BIG_TEXT, "ref": i})

    async def read_acks():
        acks = [await c.recv(60) for _ in range(n)]
        assert [a["type"] for a in acks] == ["ack"] * n, [a for a in acks if a["type"] != "ack"][:1]
        return [a["message"] for a in acks]

    _, acked = await asyncio.gather(send_all(), read_acks())
    await c.close()
    return acked


async def read_to_the_end(c: Client) -> tuple[list[dict], int | None]:
    """Resume reading a paused client: (the frames it gets, close code or None when the
    connection ended without a close frame)."""
    c.ws.transport.resume_reading()
    return await c.closed_with(timeout=30)


# -- clients that stop reading --------------------------------------------------------------
@pytest.mark.timeout(300)
async def test_readers_that_stop_reading_a_busy_channel_are_closed_and_daphne_stays_bounded(relay, pb_user):
    user, publisher = pb_user("Paused"), pb_user("Flood")
    channel = new_channel("slow")
    good = await Client.open(relay.ws_url, user.token)
    await good.request({"type": "subscribe", "channel": channel})
    slow = []
    for _ in range(30):
        c = await Client.open(relay.ws_url, user.token)
        subscribed = await c.request({"type": "subscribe", "channel": channel})
        assert subscribed["messages"] == []
        c.ws.transport.pause_reading()  # from here on, this client reads nothing
        slow.append(c)
    closes = await asyncio.to_thread(metric, relay, "relay_slow_consumer_closes_total")
    ports = {c.ws.transport.get_extra_info("sockname")[1] for c in slow}
    n = 1000  # 16 MB to each reader
    with RssPeak(relay.web.pid) as rss:
        acked, received = await asyncio.gather(publish_all(relay.ws_url, publisher.token, channel, n),
                                               good.messages(n, timeout=120))
        assert received == acked  # a client that reads gets everything, in order, and stays open
        try:
            await until(lambda: metric(relay, "relay_slow_consumer_closes_total") >= closes + len(slow), 30,
                        "every reader that stopped reading to be closed")
            # ... and dropped by daphne (its buffer freed) while it still reads nothing
            await until(lambda: not ports & peers_of(relay.web.pid), 30, "daphne to drop the closed readers")
        finally:
            print(f"\n{len(slow)} readers that stopped reading, {n} messages of 16 KB: {rss.summary()}")
    assert (await good.request({"type": "ping"}))["type"] == "pong"
    # Per reader at most the limit plus a frame waits in daphne (twice while Twisted joins it).
    assert rss.peak - rss.base < len(slow) * 2 * (MAX_OUTGOING + 20_000) + 48 * MiB, rss.summary()

    # A reader that comes back resumes from the last message it saw and misses nothing.
    for c in slow[:3]:
        frames, code = await read_to_the_end(c)
        assert code in (4408, None), code  # None: dropped before the close frame could reach it
        seen = [f["message"] for f in frames if f["type"] == "message"]
        assert seen == acked[:len(seen)]
        again = await open_unlimited(relay, user)
        since = seen[-1]["ts"] if seen else acked[0]["ts"] - 1
        resumed = await again.request({"type": "subscribe", "channel": channel, "since": since, "limit": 1000}, 60)
        assert not resumed["truncated"] and seen + resumed["messages"] == acked
        await again.close()
    for c in slow[3:]:
        c.ws.transport.abort()
    await good.close()


@pytest.fixture(scope="module")
def full_channel(relay, pb_user):
    """A channel holding 1,000 messages of BIG_TEXT (a 1,000-message page is 16 MB)."""
    channel = new_channel("pages")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(publish_all(relay.ws_url, pb_user("Filler").token, channel, 1000))
    finally:
        loop.close()
    return channel


@pytest.mark.timeout(300)
async def test_history_pages_asked_for_and_never_read_are_bounded(relay, pb_user, full_channel):
    user = pb_user("PageHoarder")
    closes = await asyncio.to_thread(metric, relay, "relay_slow_consumer_closes_total")
    c = await open_unlimited(relay, user)
    c.ws.transport.pause_reading()
    port = c.ws.transport.get_extra_info("sockname")[1]
    with RssPeak(relay.web.pid) as rss:
        for i in range(30):  # 30 pages of 16 MB
            await c.send({"type": "history", "channel": full_channel, "limit": 1000, "ref": i})
        try:
            await until(lambda: metric(relay, "relay_slow_consumer_closes_total") > closes, 60,
                        "the client that reads no page to be closed")
            await until(lambda: port not in peers_of(relay.web.pid), 30, "daphne to drop it")
        finally:
            print(f"\n30 history pages of 16 MB, none read: {rss.summary()}")
    # The first page may wait whole (one frame over the limit is sent when nothing waits);
    # the next one finds it waiting and closes the connection.
    assert rss.peak - rss.base < 2 * (16_500_000 + MAX_OUTGOING) + 64 * MiB, rss.summary()
    frames, code = await read_to_the_end(c)
    assert code in (4408, None), code
    assert len(frames) < 30 and {f["type"] for f in frames} <= {"history"}
    # Someone who reads gets the same 16 MB page (a single frame over the limit is not refused).
    reader = await open_unlimited(relay, user)
    page = await reader.request({"type": "history", "channel": full_channel, "limit": 1000}, 60)
    assert len(page["messages"]) == 1000 and len(json.dumps(page, ensure_ascii=False).encode()) > 16_000_000
    await reader.close()


# -- request bodies --------------------------------------------------------------------------
def response_to(relay, head: bytes, body: bytes = b"", timeout: float = 15) -> tuple[http.client.HTTPResponse, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body` on a new
    socket and read the response; returns (response, its body)."""
    sock = socket.create_connection(("127.0.0.1", relay.web.port), timeout=timeout)
    sock.sendall(head + b"\r\n\r\n" + body)
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return response, response.read()
    finally:
        response.close()
        sock.close()


def assert_too_large(response: http.client.HTTPResponse, body: bytes):
    assert response.status == 413, (response.status, body[:200])
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body)["error"]["code"] == "too_large"
    assert response.getheader("Connection") == "close"


@pytest.mark.parametrize("path", ["/api/channels/c/messages", "/login/", "/admin/login/", "/ws/", "/nowhere"])
@pytest.mark.parametrize("expect", [False, True])
def test_a_huge_content_length_is_refused_at_once_without_auth(relay, path, expect):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 10000000000").encode()
    if expect:  # curl's way: wait for "100 Continue" before sending the body
        head += b"\r\nExpect: 100-continue"
    response, body = response_to(relay, head, b'{"text": "' + b"x" * 5000)
    assert_too_large(response, body)


def test_bodies_up_to_the_server_limit_reach_the_application(relay, pb_user):
    """The server limit is above the API's 64 KiB, for the admin's forms: a body of exactly
    MAX_BODY bytes reaches Django (which refuses it for other reasons), one more does not."""
    head = "POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    response, body = response_to(relay, (head + f"Content-Length: {MAX_BODY}").encode(), b"a" * MAX_BODY)
    assert response.status == 403, (response.status, body[:200])  # Django's CSRF check, not the limit
    response, body = response_to(relay, (head + f"Content-Length: {MAX_BODY + 1}").encode(), b"a" * (MAX_BODY + 1))
    assert_too_large(response, body)
    api = ("POST /api/channels/c/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Authorization: Bearer {pb_user('BigBody').token}\r\n")
    response, body = response_to(relay, (api + "Content-Length: 70000").encode(), b" " * 70000)
    assert (response.status, json.loads(body)["error"]["code"]) == (413, "too_large")  # the API's own 64 KiB


def test_an_endless_chunked_body_is_refused_once_over_the_limit(relay):
    sock = socket.create_connection(("127.0.0.1", relay.web.port), timeout=15)
    sock.sendall(b"POST /api/channels/c/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    answered = threading.Event()
    sent = []

    def stream():  # never ends the body; stops when answered or cut off
        try:
            while not answered.is_set() and len(sent) < 4096:  # at most 256 MiB
                sock.sendall(chunk)
                sent.append(len(chunk))
        except OSError:
            pass

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
    finally:
        answered.set()
        sender.join()
        response.close()
        sock.close()
    assert_too_large(response, body)
    assert sum(sent) < 64 * MiB, sum(sent)  # answered while the body was still coming


# -- requests that never finish ------------------------------------------------------------
async def dribble(port: int, start: bytes, closed: list):
    """Send `start`, then one more byte every 0.25 s, until the server closes the connection;
    then append to `closed` how long it was open (s)."""
    opened = asyncio.get_running_loop().time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(start)

    async def trickle():
        while True:
            await asyncio.sleep(0.25)
            writer.write(b"a")
            await writer.drain()

    trickling = asyncio.create_task(trickle())
    try:
        while await reader.read(4096):
            pass  # what the server says before it closes (nothing expected)
    except ConnectionError:
        pass
    finally:
        trickling.cancel()
        writer.close()
    closed.append(asyncio.get_running_loop().time() - opened)


@pytest.mark.timeout(120)
async def test_requests_that_dribble_in_are_closed_and_others_are_served(relay, pb_user):
    user = pb_user("Patient")
    loop = asyncio.get_running_loop()
    ws = await Client.open(relay.ws_url, user.token)
    ws_opened = loop.time()
    headers = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # headers that never end
    body = b"POST /api/channels/c/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{"
    closed: list = []
    attack = [asyncio.create_task(dribble(relay.web.port, start, closed)) for start in [headers, body] * 200]
    try:
        await until(lambda: len(closed) > 0, 30, "a dribbling connection to be closed")
        healthz = await asyncio.to_thread(requests.get, f"{relay.http_url}healthz", timeout=15)
        assert healthz.status_code == 200  # served while the attack is on
        await asyncio.wait_for(asyncio.gather(*attack), 30)
    finally:
        for task in attack:
            task.cancel()
        print(f"\n{len(closed)} of {len(attack)} dribbling connections closed, "
              f"after {min(closed, default=0):.1f} to {max(closed, default=0):.1f} s")
    assert len(closed) == len(attack)
    assert loop.time() - ws_opened > READ_TIMEOUT_S  # the WebSocket has been open longer than that
    assert (await ws.request({"type": "ping"}))["type"] == "pong"
    await ws.close()


async def test_an_idle_keep_alive_connection_is_closed_after_the_read_timeout(relay):
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.web.port)
    for _ in range(2):  # a second request on the same connection is served too
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 15)
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 15)) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await asyncio.wait_for(reader.readexactly(length), 15)
    answered = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(1), 30) == b""  # then closed by the server
    print(f"\nidle keep-alive connection closed {asyncio.get_running_loop().time() - answered:.1f} s "
          "after its last response")
    writer.close()
