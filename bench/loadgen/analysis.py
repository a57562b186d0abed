"""Matching deliveries to publishes after a run (lost, pending, duplicated, reordered,
latency, throughput) and waiting for the deliveries during it."""
from __future__ import annotations

import asyncio
import time

from .conn import Conn
from .messages import parse_text
from .publisher import Publisher


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
