"""Bookkeeping for reconnects: which channels to resume, which messages were shown, where
to resume, how long to wait."""

from __future__ import annotations

import collections
import dataclasses
import random
from typing import Any, Iterator


class MessageTracker:
    """Remembers, per channel, the highest ``ts`` seen and which message ids were shown.

    Feed it the messages of ``subscribed`` and ``message`` frames (not ``history``
    pages, which neither move the resume point nor count as seen). After a reconnect,
    subscribe again with ``since=position(channel)`` and drop messages for which
    :meth:`add` returns False (the relay may deliver a message again, e.g. a replay).
    Ids are remembered per ``(channel, id)`` (ids are unique within a channel) and
    forgotten oldest first beyond ``max_ids``.
    """

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._ids: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._positions: dict[str, int] = {}

    def add(self, message: dict[str, Any], channel: str | None = None) -> bool:
        """Record ``message``; True if it is new (not seen before), False for a duplicate.

        Also advances the channel's position to the message's ``ts``. ``channel``
        overrides the message's ``channelid`` when that is missing. A message without
        a string ``id`` is always new.
        """
        chan = message.get("channelid") if isinstance(message.get("channelid"), str) else channel
        if chan is None:
            chan = ""
        self.advance(chan, message.get("ts"))
        mid = message.get("id")
        if not isinstance(mid, str):
            return True
        key = (chan, mid)
        if key in self._ids:
            return False
        self._ids[key] = None
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        return True

    def advance(self, channel: str, ts: object) -> None:
        """Move the channel's position to ``ts`` (int, Unix ns) if that is later; never backwards."""
        if isinstance(ts, bool) or not isinstance(ts, int):
            return
        if ts > self._positions.get(channel, -1):
            self._positions[channel] = ts

    def position(self, channel: str) -> int | None:
        """The ``since`` to resume ``channel`` from (Unix ns), or None when nothing is known."""
        return self._positions.get(channel)


@dataclasses.dataclass
class ResumeState:
    """What a reconnect resumes.

    ``subscriptions``: the channels the client wants, in order (a dict used as an
    ordered set); ``cursors``: channel -> ``last_ts`` (Unix ns, or None) of the user's
    subscriptions as the latest ``welcome`` listed them; ``tracker``: the messages seen
    and each channel's position.
    """

    subscriptions: dict[str, None] = dataclasses.field(default_factory=dict)
    cursors: dict[str, int | None] = dataclasses.field(default_factory=dict)
    tracker: MessageTracker = dataclasses.field(default_factory=MessageTracker)

    def adopt_cursors(self) -> None:
        """Want every channel of the latest ``welcome`` too, from its ``last_ts`` on (as
        the chat page does); channels already wanted keep their position."""
        for channel, last_ts in self.cursors.items():
            if channel not in self.subscriptions:
                self.subscriptions[channel] = None
                self.tracker.advance(channel, last_ts)


def backoff_delays(initial: float = 0.5, factor: float = 2.0, maximum: float = 15.0) -> Iterator[float]:
    """Reconnect delays in seconds: a random 0-``initial``, then ``initial`` doubling up to ``maximum``."""
    yield random.random() * initial
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)
