"""A small command-line client for the relay: the quickest way to see it work.

Run it as ``python -m relay_client`` (``--help`` for the options). It logs in to
PocketBase, opens the relay's WebSocket (``/ws/``, see PROTOCOL.md), and either chats
interactively or does what its options say and exits.

Plain Python, no Django and nothing of the relay's server packages (``messaging``,
``auth_pocketbase``): it needs only ``websockets`` and ``requests``. The modules:
:mod:`.protocol` (frames, URLs), :mod:`.display` (terminal lines), :mod:`.commands`
(the interactive command language), :mod:`.tracking` (dedupe and resume state),
:mod:`.gaps` (fetching what a truncated resume left out), :mod:`.login` (the
PocketBase token), :mod:`.output` (stdout and stderr), :mod:`.pending` (requests
waiting for their reply), :mod:`.incoming` (what each received frame changes and
prints), :mod:`.connection` (the WebSocket, reconnects and resends), :mod:`.session`
(the parts put together, and the requests), :mod:`.drivers` (scripted and interactive
mode), :mod:`.errors` (:class:`~.errors.Fatal`), :mod:`.cli` (arguments and ``main``).

Units used throughout: ``ts`` values (message timestamps, ``since``, ``before``) are
integers, Unix time in **nanoseconds**, as the relay assigns them.
"""

from .cli import main
from .commands import Command, CommandError, parse_command
from .display import clean_text, format_clock, format_error, format_frame, format_message
from .protocol import (
    encode_frame,
    history_frame,
    is_valid_channel,
    ping_frame,
    pocketbase_auth_url,
    publish_frame,
    subscribe_frame,
    unsubscribe_frame,
    ws_url,
)
from .tracking import MessageTracker, backoff_delays

__all__ = [
    "Command",
    "CommandError",
    "MessageTracker",
    "backoff_delays",
    "clean_text",
    "encode_frame",
    "format_clock",
    "format_error",
    "format_frame",
    "format_message",
    "history_frame",
    "is_valid_channel",
    "main",
    "parse_command",
    "ping_frame",
    "pocketbase_auth_url",
    "publish_frame",
    "subscribe_frame",
    "unsubscribe_frame",
    "ws_url",
]
