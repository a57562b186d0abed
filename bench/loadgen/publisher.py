"""What one publisher sent and what the system accepted: send times, acks and the
global order of both, from which the analysis tells a reordered delivery."""
from __future__ import annotations

import asyncio
import itertools
import time

EVENTS = itertools.count()  # global order of sends and acks in this process


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
        """Message ``seq`` is being sent with the send time ``send_ns`` (Unix ns, the one
        its text carries); for an ordered publisher this is also its acceptance."""
        ev = next(EVENTS)
        self.send_ns[seq], self.send_ev[seq] = send_ns, ev
        if self.first_send_ns is None:
            self.first_send_ns = time.time_ns()
        if self.ordered:
            self.ack_ev[seq] = ev

    def acked(self, seq: int, ok: bool, detail=None) -> None:
        """The system answered message ``seq``: accepted (``ok``) or refused (``detail``
        is kept as the error); later answers for the same seq are ignored."""
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
        """Wait up to ``timeout`` seconds for every sent message's answer; the ones
        still unanswered then count as errors (``"no ack"``)."""
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except asyncio.TimeoutError:
            missing = self.expected - len(self.ok) - len(self.errors)
            self.errors.extend(["no ack"] * missing)
