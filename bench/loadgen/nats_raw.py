"""Raw NATS's client: nats-py core publish/subscribe, one connection per subscriber."""
from __future__ import annotations

import time

from .adapter import Adapter
from .conn import Conn
from .messages import make_text, schedule
from .publisher import Publisher


class NatsConn(Conn):
    """A nats-py connection whose subscription's messages are deliveries."""

    def __init__(self, nc) -> None:
        super().__init__()
        self.nc = nc

    async def on_msg(self, msg) -> None:
        """The subscription's callback: record the message's payload as a delivery."""
        self.deliveries.append((time.time_ns(), msg.data))

    def is_closed(self) -> bool:
        """True when nats-py's connection is closed."""
        return self.nc.is_closed

    async def close(self) -> None:
        """Close the nats-py connection."""
        await self.nc.close()


class NatsAdapter(Adapter):
    """nats-py core publish/subscribe on subject ``bench.<channel>``: the transport's ceiling."""

    ordered_publish = True

    async def connect(self) -> NatsConn:
        """A nats-py connection that never reconnects (a drop shows as a closed connection)."""
        import nats

        nc = await nats.connect(self.cfg["url"], allow_reconnect=False, connect_timeout=30,
                                max_reconnect_attempts=0)
        return NatsConn(nc)

    async def open_subscriber(self, idx: int, channel: str) -> NatsConn:
        """A connection subscribed to ``bench.<channel>`` (flushed: the server has it)."""
        conn = await self.connect()
        await conn.nc.subscribe(f"bench.{channel}", cb=conn.on_msg)
        await conn.nc.flush(timeout=30)
        return conn

    async def open_publisher(self, channel: str) -> NatsConn:
        """A connection of its own for the publisher."""
        return await self.connect()

    async def publish(self, conn: NatsConn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        """Core publishes to ``bench.<channel>`` (no acks: a message counts as accepted
        once handed to nats-py; ``window`` does not apply), then one flush."""
        subject = f"bench.{channel}"
        async for seq, scheduled in schedule(n, rate):
            send_ns = scheduled or time.time_ns()
            pub.sent(seq, send_ns)
            try:
                await conn.nc.publish(subject, make_text(pub.pid, seq, send_ns, chars).encode())
            except Exception as exc:  # noqa: BLE001 - connection closed or broken
                return pub.fail_rest(seq + 1, n, repr(exc))
            pub.acked(seq, True)
        await conn.nc.flush(timeout=60)
        pub.finish_sending(n)

    @staticmethod
    def extract(raw: bytes) -> tuple[str, None]:
        """(text, None) of a message payload."""
        return raw.decode(), None
