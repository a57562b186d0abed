"""The scenarios: each opens its connections, runs its measured phase between the
``measure_start`` and ``measure_end`` phases (idle: ``idle_before``, ``idle_connected``)
and returns its result record (JSON-able; the analysis's figures and its own)."""
from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import time

from .analysis import analyse, wait_deliveries
from .channels_tutorial import TutorialAdapter
from .conn import Conn, bounded, close_all
from .nats_raw import NatsAdapter
from .phase import measured_phase, phase
from .publisher import Publisher
from .relay import RelayAdapter


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

    async with measured_phase():
        deadline = time.monotonic() + common["deadline_s"]
        await asyncio.gather(*(ad.publish(c, pub, ch, n, common["window"], rate, common["message_chars"])
                               for c, pub, ch in pub_jobs))
        await asyncio.gather(*(pub.wait_acks(max(1.0, deadline - time.monotonic()))
                               for pub in publishers.values()))
        expected = sum(len(publishers[p].ok) for c in conns for p in c.pubs)
        stop = await wait_deliveries(conns, expected, common["quiet_s"], deadline)
        end_ns = time.time_ns()
        server_closed = sum(1 for c in conns + extra_conns if c.is_closed())

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
    extra: list[Conn] = [pconn]

    if isinstance(ad, RelayAdapter):
        sconn = await ad.connect(ad.cfg["replay_token"])
        extra.append(sconn)
        since = pconn.first_ts - 1  # the position just before the first stored message
        resume = functools.partial(ad.resume, sconn, channel, since, page)
    else:  # PocketBase: the records API, paged forward by seq
        resume = functools.partial(ad.list_records, channel, page, len(pub.ok))
    async with measured_phase():
        t0 = time.time_ns()
        got, pages = await resume()  # [(receive ns, text, ts)] in the order of the resumed sequence
        t_end = time.time_ns()

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
