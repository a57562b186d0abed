"""Raw NATS: nats-server alone, core publish/subscribe on plain subjects."""
from __future__ import annotations

from pathlib import Path

from localservers import NatsServer

from .base import OneServerSystem


class NatsRawSystem(OneServerSystem):
    """nats-server; core publish/subscribe on plain subjects (no JetStream in the path)."""

    name = "nats_raw"
    process_name = "nats"

    def start(self, base: Path, users: int) -> "NatsRawSystem":
        """nats-server under ``base`` (``users`` is not needed: NATS has no auth here)."""
        self.server = self._started(NatsServer(base / "nats").start())
        return self
