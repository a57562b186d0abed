"""The client's own failures: :class:`Fatal` ends the program, :func:`os_reason` names
why a connection (to PocketBase or to the relay) failed."""

from __future__ import annotations

import os
import re
import socket


class Fatal(Exception):
    """Ends the program: ``str()`` is printed as ``error: ...`` and the exit code is 1."""


def os_reason(exc: BaseException) -> str:
    """The OS-level reason behind a connection error, e.g. ``Connection refused``.

    Follows ``__cause__``/``__context__`` (requests and asyncio wrap the socket error),
    then falls back to the first ``[Errno N]`` in the text.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(cur, OSError) and isinstance(cur.errno, int) and cur.errno > 0:
            return os.strerror(cur.errno)
        cur = cur.__cause__ or cur.__context__
    match = re.search(r"\[Errno (-?\d+)\]", str(exc))
    if match:
        number = int(match.group(1))
        return os.strerror(number) if number > 0 else "cannot resolve the host name"
    return str(exc) or exc.__class__.__name__
