"""What the client does once connected: :func:`scripted` (the options say what, then it
exits) or :func:`interactive` (commands and chat lines from stdin)."""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
from typing import TYPE_CHECKING

from .commands import HELP, CommandError, parse_command
from .errors import Fatal

if TYPE_CHECKING:
    from .session import RelayClient


async def scripted(client: RelayClient, subscribe: list[str], sends: list[tuple[str, str]],
                   wait_for: int | None) -> int:
    """Subscribe, send (each awaiting its ack), wait for ``wait_for`` messages printed;
    return the exit code (0). Raises :class:`.Fatal` when a request is refused. With
    ``subscribe`` alone, follows the channels until cancelled."""
    await client.connection.ready.wait()
    for channel in subscribe:
        reply = await client.subscribe(channel)
        if reply.get("type") == "error":
            raise Fatal(f"cannot subscribe to {channel}: {reply.get('code')}: {reply.get('message')}")
    for channel, text in sends:
        try:
            reply = await client.publish(channel, text)
        except ValueError as exc:
            raise Fatal(f"cannot send to {channel}: {exc}") from None
        if reply.get("type") == "error":
            raise Fatal(f"cannot send to {channel}: {reply.get('code')}: {reply.get('message')}")
    if wait_for is not None:
        await client.output.wait_printed(wait_for)
        return 0
    if not sends:
        await asyncio.Event().wait()  # --subscribe alone: follow until interrupted
    return 0


async def interactive(client: RelayClient, stdin_fd: int = 0) -> int:
    """Read commands and lines from ``stdin_fd`` until /quit or end of input; return 0.

    Plain lines go to the current channel (the last /sub or /join); replies are printed
    as they arrive, and at the end it waits up to 5 s for those still missing.
    """
    status = client.output.status
    await client.connection.ready.wait()
    status("* type /help for commands, /sub CHANNEL to start")
    lines = start_line_reader(stdin_fd)
    current: str | None = None  # where plain lines go
    while True:
        line = await lines.get()
        if line is None:
            break
        try:
            cmd = parse_command(line, current=current)
        except CommandError as exc:
            status(f"! {exc}")
            continue
        if cmd is None:
            continue
        if cmd.name == "quit":
            break
        if cmd.name == "help":
            status(HELP)
        elif cmd.name == "join":
            current = cmd.channel
            note = "" if cmd.channel in client.subscriptions else f" (not subscribed: /sub {cmd.channel} to see replies)"
            status(f"* now talking in {cmd.channel}{note}")
        elif cmd.name == "sub":
            current = cmd.channel
            client.spawn(client.subscribe(cmd.channel, since=cmd.ts))
        elif cmd.name == "unsub":
            client.spawn(client.unsubscribe(cmd.channel))
        elif cmd.name == "history":
            client.spawn(client.history(cmd.channel, before=cmd.ts))
        elif cmd.name == "say":
            client.spawn(client.publish(cmd.channel, cmd.text))
    if client.tasks:  # let acks and replies to what was typed arrive (piped input quits fast)
        _, late = await asyncio.wait(set(client.tasks), timeout=5)
        if late:
            status(f"! leaving without a reply to {len(late)} request(s)")
    return 0


def start_line_reader(fd: int) -> asyncio.Queue:
    """Read lines from ``fd`` in a daemon thread; the queue yields str lines, then None at EOF.

    Uses ``os.read`` (no Python-level locks, so exiting never waits for the thread) and
    decodes UTF-8 with replacement characters for bad bytes.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: str | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is gone: we are exiting

    def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        buffer = ""
        try:
            while True:
                chunk = os.read(fd, 65536)
                buffer += decoder.decode(chunk, final=not chunk)
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    put(line[:-1] if line.endswith("\r") else line)
                if not chunk:
                    break
        except OSError:
            pass
        if buffer:
            put(buffer)
        put(None)

    threading.Thread(target=pump, name="stdin-lines", daemon=True).start()
    return queue
