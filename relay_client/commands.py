"""The interactive mode's command language: ``/sub``, ``/history``, ... and plain lines.

:func:`parse_command` turns one typed line into a :class:`Command` or raises
:class:`CommandError`; :data:`HELP` is the text ``/help`` prints.
"""

from __future__ import annotations

import dataclasses
import re

from .protocol import MAX_PAGING_VALUE, check_channel

_DIGITS_RE = re.compile(r"[0-9]+")

HELP = """\
Commands:
  /sub CHANNEL [SINCE]         subscribe and make CHANNEL current (SINCE: Unix ns, exclusive)
  /unsub [CHANNEL]             unsubscribe (default: the current channel)
  /history [CHANNEL] [BEFORE]  show the newest 100 messages (before BEFORE, Unix ns)
  /join CHANNEL                send plain lines to CHANNEL (does not subscribe)
  /help                        this text
  /quit                        leave (Ctrl-D works too)
Any other line is sent to the current channel; start it with // to send a line
that begins with /."""


class CommandError(ValueError):
    """A line typed in interactive mode that cannot be run; ``str()`` is the human reason."""


@dataclasses.dataclass(frozen=True)
class Command:
    """A parsed interactive line.

    ``name`` is one of ``say``, ``sub``, ``unsub``, ``history``, ``join``, ``help``,
    ``quit``. ``channel`` is set for all but ``help``/``quit``; ``ts`` is ``since`` for
    ``sub`` and ``before`` for ``history`` (Unix ns, or None); ``text`` is set for ``say``.
    """

    name: str
    channel: str | None = None
    ts: int | None = None
    text: str | None = None


_ALIASES = {
    "sub": "sub", "subscribe": "sub",
    "unsub": "unsub", "unsubscribe": "unsub",
    "history": "history", "hist": "history",
    "join": "join",
    "help": "help", "h": "help", "?": "help",
    "quit": "quit", "q": "quit", "exit": "quit",
}


def _channel_arg(word: str) -> str:
    try:
        return check_channel(word)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _ts_arg(word: str, name: str) -> int:
    if not _DIGITS_RE.fullmatch(word):
        raise CommandError(f"{name} must be a Unix time in nanoseconds (digits only), not {word!r}")
    value = int(word)
    if value > MAX_PAGING_VALUE:
        raise CommandError(f"{name} must be at most {MAX_PAGING_VALUE}")
    return value


def parse_command(line: str, current: str | None = None) -> Command | None:
    """Parse one interactive line (without its newline) into a :class:`Command`.

    * A blank line (only whitespace) gives None: nothing to do.
    * ``/sub CHANNEL [SINCE]``, ``/unsub [CHANNEL]``, ``/history [CHANNEL] [BEFORE]``,
      ``/join CHANNEL``, ``/help``, ``/quit`` (command names are case-insensitive;
      ``/subscribe``, ``/unsubscribe``, ``/q``, ``/exit``, ``/h``, ``/?`` are aliases).
      ``/unsub`` and ``/history`` without a channel use ``current``. SINCE/BEFORE are
      decimal Unix ns.
    * ``//text`` sends ``/text``; any other line is ``say`` with the line exactly as
      typed (no trimming) to ``current``.

    Raises :class:`CommandError` (a ``ValueError``) for an unknown command, a missing
    or invalid argument, too many arguments, or a plain line with no current channel.
    """
    if not line.strip():
        return None
    if line.startswith("/") and not line.startswith("//"):
        words = line[1:].split()
        name = _ALIASES.get(words[0].lower()) if words else None
        if name is None:
            raise CommandError(f"unknown command {line.split()[0]!r}; /help lists the commands")
        args = words[1:]
        usage = {
            "sub": "/sub CHANNEL [SINCE]", "unsub": "/unsub [CHANNEL]",
            "history": "/history [CHANNEL] [BEFORE]", "join": "/join CHANNEL",
            "help": "/help", "quit": "/quit",
        }[name]
        max_args = {"sub": 2, "unsub": 1, "history": 2, "join": 1, "help": 0, "quit": 0}[name]
        if len(args) > max_args:
            raise CommandError(f"too many arguments; usage: {usage}")
        if name in ("help", "quit"):
            return Command(name)
        if name in ("sub", "join") and not args:
            raise CommandError(f"which channel? usage: {usage}")
        if args:
            channel = _channel_arg(args[0])
        elif current is not None:
            channel = current
        else:
            raise CommandError(f"no current channel; usage: {usage}")
        ts = None
        if len(args) == 2:
            ts = _ts_arg(args[1], "SINCE" if name == "sub" else "BEFORE")
        return Command(name, channel=channel, ts=ts)
    text = line[1:] if line.startswith("//") else line
    if current is None:
        raise CommandError("no current channel: /sub CHANNEL or /join CHANNEL first")
    return Command("say", channel=current, text=text)
