"""WebSocket text frames written straight to daphne's connection.

A frame the relay sends goes from the consumer through channels' `send`, daphne's
`Server.handle_reply` and `WebSocketProtocol.handle_reply`/`serverSend` to autobahn's
`sendMessage`, `sendFrame` and `sendData`: for every delivery, a coroutine, the checks
of three libraries, debug-log calls whose arguments are built even when debug logging
is off, and per-frame statistics. That path was about 15 % of daphne's CPU per
delivery in the benchmark (docs/performance.md). For a plain open connection its
result is one unmasked, unfragmented, uncompressed text frame (RFC 6455, 5.2) handed to
the Twisted transport; `writer_for` writes exactly those bytes itself. Both paths end in
that transport's buffer, which `backlog_for` reads (what still waits for the client).

Anything else (a send that is not daphne's, a connection not open, a message being
sent in fragments, permessage-deflate, autobahn's timing tracking or automatic
fragmentation) takes the normal path, so its behaviour (errors included) stays
autobahn's and daphne's. One difference is meant: autobahn holds what it sends to the
limit set for what clients send (daphne's --websocket-max-message-size, 16 MiB in
serve.py), and would refuse a valid history page of 1,000 messages of 4,000 four-byte
characters (17 MB); the relay's own frames are not held to it. Reads autobahn's protocol
fields as of autobahn 26.11.1 and daphne 4.2.3 (both pinned);
tests/unit/test_frame_writer.py compares the bytes with autobahn's own. It recognises
daphne's send by name rather than importing daphne.server, whose import installs
Twisted's reactor on a new event loop in any process that imports this one.
"""
from collections.abc import Callable
from functools import partial

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet import tcp

from overrides import twisted_tcp as transport

OPEN = WebSocketProtocol.STATE_OPEN
GROUND = WebSocketProtocol.SEND_STATE_GROUND


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (opcode 1) carrying `payload` (UTF-8 bytes), as a
    server sends it (RFC 6455, section 5.2: 7-bit, 16-bit or 64-bit length)."""
    n = len(payload)
    if n < 126:
        return b"\x81" + n.to_bytes(1, "big") + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def daphne_protocol(send) -> WebSocketProtocol | None:
    """daphne's WebSocket protocol behind `send` when `send` is daphne's own
    (`partial(Server.handle_reply, protocol)`), else None (e.g. behind a middleware that
    wraps send, or under channels' test communicator)."""
    handle_reply = getattr(send, "func", None)
    if (isinstance(send, partial) and getattr(handle_reply, "__module__", None) == "daphne.server"
            and getattr(handle_reply, "__qualname__", None) == "Server.handle_reply"
            and len(send.args) == 1 and isinstance(send.args[0], WebSocketProtocol)):
        return send.args[0]
    return None


def backlog_for(send) -> Callable[[], int] | None:
    """A function giving the bytes sent to the client behind `send` that still wait in
    daphne's TCP connection (transport.waiting), or None when `send` is not daphne's own or
    its connection is not plain TCP (TLS terminated by daphne itself keeps them elsewhere)."""
    protocol = daphne_protocol(send)
    if protocol is None or not isinstance(protocol.transport, tcp.Connection) or protocol.transport.TLS:
        return None
    return partial(transport.waiting, protocol.transport)


def writer_for(send) -> Callable[[bytes], bool] | None:
    """A function writing a text frame straight to the connection behind `send`, or None
    when `send` is not daphne's own (daphne_protocol).

    The function takes the payload (UTF-8 bytes) and returns True when it wrote the frame,
    False when the caller must send it the normal way (see the module docstring)."""
    protocol = daphne_protocol(send)
    if protocol is None or protocol.factory.isServer is not True or protocol.maskServerFrames:
        return None

    def write_text(payload: bytes) -> bool:
        if (protocol.state != OPEN or protocol.send_state != GROUND or protocol._perMessageCompress is not None
                or protocol.trackedTimings or protocol.autoFragmentSize):
            return False
        protocol.transport.write(text_frame(payload))
        return True

    return write_text
