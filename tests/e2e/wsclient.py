"""A small WebSocket test client for the relay's protocol (websockets library)."""
import asyncio
import itertools
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

_refs = itertools.count(1)


class Client:
    """One connection. Frames that are not the awaited reply are kept in `inbox`, in order."""

    def __init__(self, ws):
        self.ws = ws
        self.inbox: list[dict] = []
        self.welcome: dict | None = None

    @classmethod
    async def open(cls, url, token=None, headers=None, origin=None, expect_welcome=True):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if origin:
            headers["Origin"] = origin
        ws = await connect(url, additional_headers=headers, max_size=2**22, open_timeout=15)
        client = cls(ws)
        if expect_welcome:
            client.welcome = await client.recv()
            assert client.welcome["type"] == "welcome", client.welcome
        return client

    async def send(self, frame):
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout=15.0) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def frames(self, n: int, timeout=15.0) -> list[dict]:
        """The next `n` frames, whatever their type."""
        return [await self.recv(timeout) for _ in range(n)]

    async def request(self, frame: dict, timeout=15.0) -> dict:
        """Send `frame` with a fresh ref and return the reply carrying that ref."""
        ref = next(_refs)
        await self.send({**frame, "ref": ref})
        while True:
            reply = await self.recv(timeout)
            if reply.get("ref") == ref:
                return reply
            self.inbox.append(reply)

    async def messages(self, n: int, timeout=30.0) -> list[dict]:
        """The next `n` `message` frames' messages, in arrival order; other frames
        stay in `inbox`. Raises TimeoutError when they do not all come in `timeout` s."""
        out, rest = [], []
        for frame in self.inbox:
            (out if frame["type"] == "message" and len(out) < n else rest).append(frame)
        out = [f["message"] for f in out]
        self.inbox = rest
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < n:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame["type"] == "message":
                out.append(frame["message"])
            else:
                self.inbox.append(frame)
        return out

    async def quiet(self) -> list[dict]:
        """Round-trip a ping and return the frames that arrived before the pong."""
        await self.request({"type": "ping"})
        frames, self.inbox = self.inbox, []
        return frames

    async def closed_with(self, timeout=15.0) -> tuple[list[dict], int]:
        """Read until the server closes; return (frames read, close code)."""
        frames = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))
        except ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd else None

    async def close(self):
        await self.ws.close()


async def subscribed_readers(ws_url: str, reader_token: str, publisher_token: str, channel: str,
                             readers: int = 2) -> tuple[list[Client], Client]:
    """`readers` connections of one user subscribed to `channel`, and a publisher's
    connection (another user): ([reader, ...], publisher)."""
    opened = [await Client.open(ws_url, reader_token) for _ in range(readers)]
    for reader in opened:
        await reader.request({"type": "subscribe", "channel": channel})
    return opened, await Client.open(ws_url, publisher_token)
