"""The heartbeat's check for connections behind the history, batched per process.

At each heartbeat (every RELAY_HEARTBEAT_SECONDS, session.py) a connection asks whether
the history holds messages of its channels beyond what it sent: events the channel
layer or JetStream lost. Asking one pipelined Redis read per connection cost daphne
about 20 µs per idle connection per second (the benchmark's `idle`, 2,000 connections:
44 of 87 ms of CPU per second). Here the connections that beat within CHECK_BATCH_S
are checked together: one pipelined read of the newest ts of every channel they
subscribed (each channel once), and `relay.catch_up` goes to the inbox of each one that
is behind.
"""
import logging
from collections.abc import Mapping

from messaging.deliver.link import CATCH_UP
from messaging.deliver.session import Status
from messaging.state import backends
from messaging.state.backends import REDIS_ERRORS
from messaging.state.writebehind import WriteBehind, per_loop

log = logging.getLogger(__name__)

CHECK_BATCH_S = 1.0  # a beat is checked within a second (the beats are RELAY_HEARTBEAT_SECONDS apart)


def is_behind(sent: Mapping[str, int], heads: Mapping[str, int]) -> bool:
    """Whether any channel's newest ts in the history (`heads`: channel -> ts, Unix ns;
    0 when empty) is beyond the last ts a connection sent of it (`sent`: channel -> ts)."""
    return any(heads.get(channel, 0) > last for channel, last in sent.items())


async def check(beats: dict) -> None:
    """Check a batch of beats (`{connection_id: session}`, session.Session): put
    `relay.catch_up` into the inbox of each open session that is behind. A Redis
    failure is logged; the next heartbeat checks again."""
    open_ = [s for s in beats.values() if s.status is Status.OPEN]
    channels = sorted({channel for session in open_ for channel in session.delivery.subscribed})
    if not channels:
        return
    try:
        heads = dict(zip(channels, await backends.get().history.heads(channels)))
    except REDIS_ERRORS as exc:
        log.warning("Redis unavailable during the heartbeat (%r); %d connection(s) checked at their next one",
                    exc, len(open_))
        return
    for session in open_:
        if is_behind({c: s.last for c, s in session.delivery.subscribed.items()}, heads):
            session.link.put(CATCH_UP)


behind_checks = per_loop(lambda: WriteBehind(check, CHECK_BATCH_S))
