"""PocketBase's own realtime: a ``messages`` collection with open rules, SSE subscribers."""
from __future__ import annotations

from pathlib import Path

import requests

from localservers import PocketBaseServer

from .base import OneServerSystem, StartError


class PocketBaseRealtimeSystem(OneServerSystem):
    """PocketBase's own realtime: a ``messages`` collection with open rules, SSE subscribers."""

    name = "pocketbase_realtime"
    process_name = "pocketbase"

    def start(self, base: Path, users: int) -> "PocketBaseRealtimeSystem":
        """PocketBase under ``base`` and its ``messages`` collection (fields room, text,
        seq; an index on (room, seq)); ``users`` is not needed (the rules are open)."""
        self.server = self._started(PocketBaseServer(base / "pocketbase").start())
        token = self.server.api.superuser_token()
        collection = {
            "name": "messages", "type": "base",
            "listRule": "", "viewRule": "", "createRule": "",  # "" = anyone, no auth
            "fields": [{"name": "room", "type": "text"}, {"name": "text", "type": "text"},
                       {"name": "seq", "type": "number"}],
            "indexes": ["CREATE INDEX idx_messages_room_seq ON messages (room, seq)"],
        }
        resp = requests.post(f"{self.server.url}/api/collections", json=collection,
                             headers={"Authorization": token}, timeout=30)
        if resp.status_code != 200:
            raise StartError(f"creating the messages collection: HTTP {resp.status_code}: {resp.text}")
        return self
