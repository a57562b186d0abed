"""The command line: ``python -m relay_client [options]``.

It logs in to PocketBase, opens the relay's WebSocket (``/ws/``, see PROTOCOL.md) and
then either

* **interactive mode** (the default): subscribes again to every subscription the
  ``welcome`` lists (each from its ``last_ts``), reads commands and chat lines from
  stdin and prints what the relay sends as it arrives, for example::

      [channel1 09:41:03] Bob: hello

* **scripted mode** (when ``--subscribe``, ``--send`` or ``--wait-for`` is given): does
  exactly what the options say, then exits. Exit codes: 0 done, 1 error (login refused,
  relay unreachable, a request answered with an ``error`` frame, bad arguments),
  2 ``--timeout`` reached while still waiting.

Output: stdout carries what the relay said (human lines, or with ``--json`` one JSON
object per received frame); stderr carries what the client itself says (status,
reconnects, help, local errors).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import signal
import sys
import time
import warnings
from typing import Any, Callable

from . import drivers
from .errors import Fatal
from .login import login
from .protocol import check_channel, publish_frame, ws_url
from .session import RelayClient

DEFAULT_RELAY_URL = "http://127.0.0.1:8000"
DEFAULT_POCKETBASE_URL = "http://127.0.0.1:8090"
_DIGITS_RE = re.compile(r"[0-9]+")


class _Parser(argparse.ArgumentParser):
    """argparse with two changes: errors exit 1, and an option's values may begin with
    "-" (a password "-x1", a text "-hi", a channel "-general"), which argparse alone
    takes for unknown options. Options taking values are added with `add_valued`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._value_counts: dict[str, int] = {}  # option string -> how many values follow it
        self._shielded: dict[str, str] = {}  # placeholder -> the value it stands for

    def add_valued(self, name: str, nargs: int = 1, type: Callable[[str], Any] = str, **kwargs) -> None:
        """add_argument for an option taking `nargs` values, converted by `type`."""
        self._value_counts[name] = nargs
        self.add_argument(name, nargs=None if nargs == 1 else nargs, type=self._unshielded(type), **kwargs)

    def _unshielded(self, convert: Callable[[str], Any]) -> Callable[[str], Any]:
        def wrapped(value: str) -> Any:
            return convert(self._shielded.get(value, value))
        wrapped.__name__ = getattr(convert, "__name__", "value")  # argparse names it in errors
        return wrapped

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's parse_args, with the values that follow a valued option shielded:
        a value beginning with "-" goes through as a placeholder its type restores."""
        argv = list(sys.argv[1:] if args is None else args)
        self._shielded = {}
        i = 0
        while i < len(argv):
            count = self._values_after(argv[i])
            for j in range(i + 1, min(len(argv), i + 1 + count)):
                if argv[j].startswith("-"):
                    placeholder = f"\0{len(self._shielded)}"
                    self._shielded[placeholder] = argv[j]
                    argv[j] = placeholder
            i += 1 + count
        return super().parse_args(argv, namespace)

    def _values_after(self, token: str) -> int:
        """How many values follow `token`: its option's count, also when abbreviated
        (--pass for --password) as argparse allows; 0 for anything else."""
        if token in self._value_counts:
            return self._value_counts[token]
        named = [n for n in self._value_counts if token.startswith("--") and len(token) > 2 and n.startswith(token)]
        return self._value_counts[named[0]] if len(named) == 1 else 0

    def error(self, message: str) -> None:  # exit 1, not argparse's 2 (2 means timeout here)
        for placeholder, value in self._shielded.items():
            message = message.replace(repr(placeholder), repr(value)).replace(placeholder, value)
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}\n")


def _channel_type(value: str) -> str:
    try:
        return check_channel(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count_type(value: str) -> int:
    if not _DIGITS_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected a count (0 or more), not {value!r}")
    return int(value)


def _seconds_type(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see ``--help``)."""
    parser = _Parser(
        prog="python -m relay_client",
        description="Chat through the relay from a terminal, or script it for demos and tests.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
interactive (default):
  python -m relay_client --email bob@example.com
  then: /sub channel1, type lines to send them, /help for more

scripted (any of --subscribe, --send, --wait-for):
  python -m relay_client --email bob@example.com --password X --send channel1 "hi alice"
  python -m relay_client --email alice@example.com --password X \\
      --subscribe channel1 --wait-for 1 --timeout 10 --json

exit codes: 0 done, 1 error, 2 --timeout reached while still waiting.
stdout: what the relay sent (human lines or --json); stderr: the client's own notes.""",
    )
    parser.add_valued("--url", default=os.environ.get("RELAY_URL") or DEFAULT_RELAY_URL,
                      help="the relay's base URL; the WebSocket is ws(s)://HOST/ws/ "
                           "(default: $RELAY_URL or %(default)s)")
    parser.add_valued("--pocketbase", default=os.environ.get("POCKETBASE_URL") or DEFAULT_POCKETBASE_URL,
                      help="PocketBase base URL (default: $POCKETBASE_URL or %(default)s)")
    parser.add_valued("--email", help="PocketBase user to log in as (asked for when missing)")
    parser.add_valued("--password", help="the user's password (asked for, hidden, when missing)")
    parser.add_valued("--token", help="use this PocketBase auth token instead of logging in")
    parser.add_valued("--subscribe", metavar="CHANNEL", action="append", default=[], type=_channel_type,
                      help="subscribe to CHANNEL and print its messages (repeatable)")
    parser.add_valued("--send", 2, metavar=("CHANNEL", "TEXT"), action="append", default=[],
                      help="publish TEXT to CHANNEL (after any --subscribe), waiting for each ack (repeatable)")
    parser.add_valued("--wait-for", metavar="N", type=_count_type,
                      help="exit 0 once N messages (live or history) have been printed in total")
    parser.add_valued("--timeout", metavar="S", type=_seconds_type,
                      help="give up after S seconds with exit code 2")
    parser.add_argument("--json", action="store_true",
                        help="print every received frame as one JSON line (no dedupe) instead of human lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv``, log in, connect, run; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        for channel, text in args.send:
            try:
                publish_frame(check_channel(channel), text)
            except ValueError as exc:
                parser.error(f"--send {channel!r}: {exc}")
        try:
            uri = ws_url(args.url)
        except ValueError as exc:
            parser.error(f"--url: {exc}")
        scripted = bool(args.subscribe or args.send or args.wait_for is not None)

        relogin = None
        if args.token:
            token = args.token
        else:
            email = args.email
            if not email:
                if not sys.stdin.isatty():
                    raise Fatal("--email is required when stdin is not a terminal")
                email = input("Email: ").strip()
            password = args.password
            if password is None:
                password = _ask_password(f"Password for {email}: ")
            login_timeout = 10.0 if deadline is None else max(0.1, min(10.0, deadline - time.monotonic()))
            token, _record = login(args.pocketbase, email, password, timeout=login_timeout)

            def relogin() -> str:
                return login(args.pocketbase, email, password)[0]

        client = RelayClient(uri, token, json_mode=args.json, relogin=relogin, resume_subscriptions=not scripted)
        if scripted:
            driver = lambda: drivers.scripted(client, args.subscribe, [tuple(s) for s in args.send], args.wait_for)  # noqa: E731
        else:
            driver = lambda: drivers.interactive(client)  # noqa: E731
        return asyncio.run(_run_with_deadline(client, driver, deadline, args.wait_for))
    except Fatal as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr, flush=True)
        return 130


def _ask_password(prompt: str) -> str:
    """getpass on the terminal; raises Fatal when there is none (getpass would fall back
    to an echoing prompt on stdin, which is also where the chat lines come from)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise Fatal("--password is required without a terminal") from None


async def _run_with_deadline(client: RelayClient, driver: Callable[[], Any], deadline: float | None,
                             wait_for: int | None) -> int:
    """Run the client; exit code 2 when ``deadline`` (time.monotonic) passes first (its
    message names ``wait_for``, the messages --wait-for waits for), 143 on SIGTERM."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        main_task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):
        pass
    run = asyncio.create_task(client.run(driver))
    try:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({run}, timeout=remaining)
        if run in done:
            return run.result()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        goal = f" of {wait_for}" if wait_for is not None else ""
        print(f"error: timed out while still waiting (printed {client.printed}{goal} message(s))",
              file=sys.stderr, flush=True)
        return 2
    except asyncio.CancelledError:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        if terminated:
            return 143
        raise
