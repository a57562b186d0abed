"""Where the client writes: stdout carries what the relay sent (human lines, or one JSON
object per frame), stderr what the client itself says (status, reconnects, help)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO


class Output:
    """The client's two streams and the count of messages printed on stdout.

    ``json_mode``: received frames are printed as JSON lines (``--json``) instead of
    human lines. ``printed`` counts the messages printed (``subscribed``, ``message``
    and ``history``), which ``--wait-for`` waits on (:meth:`wait_printed`).
    """

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None, *,
                 json_mode: bool = False) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.json_mode = json_mode
        self.printed = 0
        self._printed_changed = asyncio.Event()

    def status(self, text: str) -> None:
        """A line from the client itself (stderr)."""
        print(text, file=self.stderr, flush=True)

    def emit_lines(self, lines: list[str]) -> None:
        """Print lines of what the relay sent (stdout)."""
        for line in lines:
            print(line, file=self.stdout)
        self.stdout.flush()

    def emit_json(self, frame: Any) -> None:
        """Print a received frame as one JSON line (stdout); non-ASCII is escaped unless
        stdout's encoding is a UTF."""
        encoding = (getattr(self.stdout, "encoding", None) or "ascii").lower()
        ascii_only = not encoding.replace("-", "").startswith("utf")
        print(json.dumps(frame, ensure_ascii=ascii_only, separators=(",", ":")), file=self.stdout, flush=True)

    def count(self, n: int) -> None:
        """Add ``n`` messages (just printed) to :attr:`printed`."""
        if n:
            self.printed += n
            self._printed_changed.set()

    async def wait_printed(self, n: int) -> None:
        """Return once :attr:`printed` is at least ``n``."""
        while self.printed < n:
            self._printed_changed.clear()
            await self._printed_changed.wait()
