"""The interface through which the scenarios drive every system's client."""
from __future__ import annotations

from .conn import Conn
from .publisher import Publisher


class Adapter:
    """One system's client, built from the system's client config (``cfg``: URLs,
    tokens, as ``bench.systems`` ``System.client_config()`` gives them) and the common
    knobs (``common``: ``bench.config.COMMON`` and the scenario's ``deadline_s``).

    ``ordered_publish`` (a class attribute of each adapter): whether one connection's
    publishes are one ordered stream (see ``Publisher``).
    """

    ordered_publish: bool

    def __init__(self, cfg: dict, common: dict) -> None:
        self.cfg, self.common = cfg, common

    async def open_subscriber(self, idx: int, channel: str) -> Conn:
        """User ``idx``'s connection, subscribed to ``channel``, recording deliveries."""
        raise NotImplementedError

    async def open_publisher(self, channel: str) -> Conn:
        """The connection the publisher of ``channel`` publishes on."""
        raise NotImplementedError

    async def publish(self, conn: Conn, pub: Publisher, channel: str, n: int, window: int,
                      rate: float | None, chars: int) -> None:
        """Send ``n`` messages (``messages.make_text``, ``chars`` characters) to ``channel``
        on ``conn``, at most ``window`` unanswered where the system answers, paced at
        ``rate`` messages per second or (None) as fast as accepted; records every send
        and answer on ``pub`` and ends with ``pub.finish_sending(n)``."""
        raise NotImplementedError

    @staticmethod
    def extract(raw) -> tuple[str, int | None]:
        """(message text, the relay's ts in Unix ns or None) of a recorded delivery
        ``raw``; raises for anything that is not a message."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the adapter holds (HTTP sessions); the scenario closes the
        connections."""
