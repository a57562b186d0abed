"""What a session needs from the connection that carries it (deliver/session.py).

A transport carries server frames (the dicts of PROTOCOL.md: `welcome`, `subscribed`,
`message`, `ack`, `error`, ...) to one client, in order, and can end the connection
with one of the relay's close codes (protocol/limits.py). The WebSocket is one
(deliver/websocket.py); a server stream (gRPC, SSE) is another: it maps each frame to
its own event and each close code to its own way of ending (a status, the end of the
response), and has no client frames, only the commands its adapter builds from its
request.
"""
from typing import Protocol


class TransportClosed(Exception):
    """The transport takes no more frames: the client went away, or the connection is
    closing (the relay closed it, or the client sent its close)."""


class Transport(Protocol):
    """One client connection, as a session sees it."""

    async def send(self, frame: dict) -> None:
        """Send one server frame (a JSON-encodable dict), after every frame sent before.
        Raises TransportClosed when the connection takes no more frames."""

    async def close(self, code: int) -> None:
        """End the connection with `code`, a relay close code (4401, 4408, 4413, 4429,
        4503), after the frames sent before it. Never raises."""

    def backlog(self) -> int:
        """Bytes sent to this transport and not yet handed to the network (what waits
        for a client that does not read); 0 when the transport cannot tell."""
