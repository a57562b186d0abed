"""Load that a small deployment meets: 2,000 idle connections on one daphne, and 200
connections in 100 channels exchanging messages for RELAY_SOAK_SECONDS (30 by default)
with nothing lost.
Figures are printed (run with -s to see them); timing goals live in bench/."""
import asyncio
import itertools
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from websockets.asyncio.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def relay_env():
    return {"RELAY_MAX_CONNECTIONS_PER_USER": "100"}


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


async def open_socket(url, token, attempts=5):
    """A connection past its welcome; like any client, it reconnects after a 4503
    (a Redis call timing out on this busy 2-core machine) with a short backoff."""
    for attempt in range(attempts):
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60, max_size=2**22)
        welcome = json.loads(await ws.recv())
        if welcome["type"] == "welcome":
            return ws
        assert welcome.get("code") == "unavailable", welcome
        await ws.close()
        await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError(f"still unavailable after {attempts} attempts")


@pytest.mark.timeout(600)
async def test_two_thousand_idle_connections_on_one_daphne(relay, pb_user):
    users = [pb_user(f"idle{i}") for i in range(25)]
    await open_socket(relay.ws_url, users[0].token)  # warm up daphne before measuring
    before = rss(relay.web.pid)
    sockets = []
    for batch in range(20):
        sockets += await asyncio.gather(*[
            open_socket(relay.ws_url, users[(batch * 100 + i) % len(users)].token) for i in range(100)
        ])
    after = rss(relay.web.pid)
    per_connection = (after - before) / len(sockets)
    print(f"\n2000 idle connections: daphne RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB, "
          f"{per_connection / 1024:.1f} KiB per connection")
    # All still served: a ping on a sample of them gets its pong.
    for ws in sockets[::100]:
        await ws.send(json.dumps({"type": "ping", "ref": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == {"type": "pong", "ref": 1}
    await asyncio.gather(*[ws.close() for ws in sockets])


@pytest.mark.timeout(600)
async def test_two_hundred_connections_in_one_hundred_channels_for_a_soak(relay, pb_user):
    duration_s, interval_s = float(os.environ.get("RELAY_SOAK_SECONDS", "30")), 1.0
    with ThreadPoolExecutor(4) as pool:  # PocketBase hashes each password: on both cores at once
        users = list(pool.map(pb_user, [f"{side}{i}" for i in range(100) for side in "ab"]))
    pairs = [(f"load-{uuid.uuid4().hex[:8]}", users[2 * i], users[2 * i + 1]) for i in range(100)]
    conns = []  # (channel, ws)
    for channel, a, b in pairs:
        for user in (a, b):
            ws = await open_socket(relay.ws_url, user.token)
            await ws.send(json.dumps({"type": "subscribe", "channel": channel, "ref": "sub"}))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "subscribed", reply
            conns.append((channel, ws))

    acked: dict[str, list] = {channel: [] for channel, _, _ in pairs}
    received: dict[int, list] = {i: [] for i in range(len(conns))}
    errors: list = []
    refs = itertools.count()

    frames_by_ref: dict[int, str] = {}
    retries: list = []

    async def resend(ws, raw):
        await asyncio.sleep(0.5)
        await ws.send(raw)

    async def read(i, ws, channel):
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "message":
                received[i].append(frame["message"])
            elif frame["type"] == "ack":
                acked[channel].append(frame["message"])
            elif frame.get("code") == "unavailable" and frame.get("ref") in frames_by_ref:
                # what a client does: send it again with the same client_id (stored once)
                retries.append(frame["ref"])
                asyncio.ensure_future(resend(ws, frames_by_ref[frame["ref"]]))
            else:
                errors.append(frame)

    async def write(ws, channel, offset):
        await asyncio.sleep(offset)
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            ref = next(refs)
            frames_by_ref[ref] = json.dumps({"type": "publish", "channel": channel, "text": "hi", "ref": ref,
                                             "client_id": f"c{ref}"})
            await ws.send(frames_by_ref[ref])
            await asyncio.sleep(interval_s)

    readers = [asyncio.create_task(read(i, ws, channel)) for i, (channel, ws) in enumerate(conns)]
    started = time.monotonic()
    await asyncio.gather(*[write(ws, channel, (i % 100) / 100 * interval_s) for i, (channel, ws) in enumerate(conns)])
    sent = sum(len(v) for v in acked.values())

    def done():
        return all(len(received[i]) >= len(acked[channel]) for i, (channel, _) in enumerate(conns))

    while not done() and time.monotonic() - started < duration_s + 60:
        await asyncio.sleep(0.2)
    for task in readers:
        task.cancel()
    await asyncio.gather(*[ws.close() for _, ws in conns])

    assert errors == []
    lost = doubled = 0
    for i, (channel, _) in enumerate(conns):
        expected = sorted(acked[channel], key=lambda m: m["ts"])
        got = received[i]
        lost += len({m["id"] for m in expected} - {m["id"] for m in got})
        doubled += len(got) - len({m["id"] for m in got})
        assert got == expected, (
            f"connection {i} on {channel}: got {len(got)}, expected {len(expected)}, "
            f"missing {sorted({m['id'] for m in expected} - {m['id'] for m in got})[:5]}, "
            f"extra {sorted({m['id'] for m in got} - {m['id'] for m in expected})[:5]}, "
            f"in order {[m['id'] for m in got] == sorted(m['id'] for m in got)}"
        )
    print(f"\n200 connections, 100 channels, {duration_s:.0f} s: {sent} messages acked, "
          f"{sum(len(v) for v in received.values())} deliveries, lost {lost}, doubled {doubled}, "
          f"{len(retries)} publishes repeated after `unavailable`")
