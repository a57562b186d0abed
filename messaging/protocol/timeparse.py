"""Time arguments of the management commands: Unix ns, ISO 8601, or a duration back.

`15m`, `2h`, `7d` (also `s` and `w`) mean that long before `now`; an ISO 8601 time
without an offset is UTC. Everything becomes Unix nanoseconds.
"""
import re
from datetime import datetime, timezone

from messaging.protocol.limits import MAX_INT64
from messaging.protocol.timestamps import ts_to_datetime

_DURATION = re.compile(r"([0-9]+)([smhdw])", re.ASCII)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, now_ns: int) -> int:
    """Unix ns for a command-line time; ValueError with a one-line reason otherwise."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        ns = int(text)
        if ns > MAX_INT64:
            raise ValueError(f"{value!r} is beyond 2^63-1 ns")
        return ns
    match = _DURATION.fullmatch(text)
    if match:
        return max(0, now_ns - int(match[1]) * _SECONDS[match[2]] * 1_000_000_000)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use Unix nanoseconds, ISO 8601 (2026-11-29T09:00:00Z) "
            "or a duration back from now (15m, 2h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    if seconds < 0:
        raise ValueError(f"{value!r} is before 1970")
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def empty_range(since: int | None, until: int | None) -> str | None:
    """Why `since` < ts <= `until` (Unix ns, None = open) can hold no message, as one
    line naming both times; None when it can."""
    if since is None or until is None or until > since:
        return None
    return (f"the range is empty: --until {until} ({format_ts(until)}) is not after "
            f"--since {since} ({format_ts(since)}); since is exclusive, until inclusive")


def format_ts(ts: int) -> str:
    """A ts in ns as '2026-11-29 09:41:03.123456 UTC'."""
    return ts_to_datetime(ts).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
