"""The Channels tutorial chat's client: a plain WebSocket per room, every frame a
delivery, ``{"message": text}`` sends without acks."""
from __future__ import annotations

import json
import time

import orjson
from websockets.exceptions import ConnectionClosed

from .adapter import Adapter
from .conn import StreamConn
from .messages import make_text, schedule
from .publisher import Publisher


class WsConn(StreamConn):
    """A plain WebSocket whose every frame is a delivery (the tutorial chat)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        super().__init__(ws)

    async def close(self) -> None:
        """Close the WebSocket and stop its reader."""
        await self.ws.close()
        self.task.cancel()


class TutorialAdapter(Adapter):
    """The Channels tutorial chat: ``ws/chat/<room>/``, frames ``{"message": text}``."""

    ordered_publish = True  # one WebSocket is one ordered stream; there are no acks

    async def connect(self, room: str) -> WsConn:
        """A WebSocket joined to ``room`` (``ws/chat/<room>/``, with the page's Origin)."""
        from websockets.asyncio.client import connect

        ws = await connect(f"{self.cfg['ws_base']}{room}/", origin=self.cfg["origin"], max_size=None,
                           compression=None, ping_interval=None, open_timeout=60, close_timeout=5)
        return WsConn(ws)

    async def open_subscriber(self, idx: int, channel: str) -> WsConn:
        """A connection to the room ``channel`` (the tutorial has no users)."""
        return await self.connect(channel)

    async def open_publisher(self, channel: str) -> WsConn:
        """A connection to the room: the tutorial has no publish-only connection, so the
        publisher joins the room too (its own echoes are read and ignored)."""
        return await self.connect(channel)

    async def publish(self, conn: WsConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        """``{"message": text}`` frames as fast as the socket takes them (no acks exist:
        a message counts as accepted once sent; ``window`` does not apply)."""
        async for seq, scheduled in schedule(n, rate):
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            try:
                await conn.ws.send(json.dumps({"message": make_text(pub.pid, seq, send_ns, chars)}))
            except ConnectionClosed:
                return pub.fail_rest(seq + 1, n, "connection closed")
            pub.acked(seq, True)
        pub.finish_sending(n)

    @staticmethod
    def extract(raw: str) -> tuple[str, None]:
        """(text, None) of a chat frame."""
        return orjson.loads(raw)["message"], None
