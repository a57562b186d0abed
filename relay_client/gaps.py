"""Filling the gap a truncated ``subscribed`` page leaves when resuming (PROTOCOL.md,
guarantee 3): more than ``limit`` messages followed ``since``, so the relay sent the
newest ``limit`` and ``"truncated": true``; the ones between ``since`` and the oldest
of that page are fetched with ``history`` frames. ``ts`` values are Unix nanoseconds.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from .display import oldest_ts
from .protocol import history_frame

FILL_LIMIT = 1000  # missed messages fetched into one gap at most (the relay's largest page)


def gap_of(frame: dict[str, Any], since: int | None) -> tuple[int, int] | None:
    """The messages a ``subscribed`` frame left out: ``(after, before)``, meaning those
    with after < ts < before, or None when it left none out.

    ``since`` is where the relay started the page: the ``since`` sent, else the user's
    cursor from ``welcome``; None when there was neither (then ``truncated`` only means
    that older history exists, nothing was skipped).
    """
    messages = frame.get("messages")
    oldest = oldest_ts(messages) if isinstance(messages, list) else None
    if not frame.get("truncated") or since is None or oldest is None or oldest <= since:
        return None
    return since, oldest


async def fill_gap(request: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], channel: str,
                   after: int, before: int, limit: int = FILL_LIMIT) -> tuple[list[dict[str, Any]], bool]:
    """Fetch the messages with after < ts < before, oldest first, at most ``limit``.

    Pages forward with ``history`` frames (``since`` = ``after``, then the newest ``ts``
    of the page before; ``before`` = ``before``) until ``more`` is false. ``request``
    sends a client frame and returns the reply (``history`` or ``error``).
    Returns ``(messages, rest)``: ``rest`` is True when messages of the gap were left
    out (``limit`` reached, or an ``error`` answered a page).
    """
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        reply = await request(history_frame(channel, since=after, before=before, limit=limit - len(found)))
        messages = reply.get("messages") if reply.get("type") == "history" else None
        if not isinstance(messages, list):
            return found, True
        page = [m for m in messages if isinstance(m, dict)]
        found.extend(page)
        newest = max((m["ts"] for m in page if isinstance(m.get("ts"), int) and not isinstance(m["ts"], bool)),
                     default=None)
        if not reply.get("more"):
            return found, False
        if newest is None or newest <= after:
            return found, True  # no way on from this page
        after = newest
    return found, True
