"""The Channels tutorial chat (bench/channels_tutorial) on daphne, with its own Redis."""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from localservers import RedisServer, free_port
from localservers._util import tail

from .base import System
from .process import Process

TUTORIAL_DIR = Path(__file__).resolve().parent.parent / "channels_tutorial"


class TutorialSystem(System):
    """The Channels tutorial chat (bench/channels_tutorial) on daphne, with its own Redis."""

    name = "channels_tutorial"

    def start(self, base: Path, users: int) -> "TutorialSystem":
        """Its Redis and daphne under ``base`` (``users`` is not needed: the tutorial has
        no users); raises StartError."""
        # Redis as a tutorial reader runs it: no append-only file, no snapshots
        # (snapshots would fork in the middle of a measurement).
        self.redis = self._started(RedisServer(base / "redis", args=("--appendonly", "no")).start())
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial_project.settings",
               "TUTORIAL_REDIS_URL": self.redis.url, "TUTORIAL_DB": str(base / "db.sqlite3"),
               "TUTORIAL_SECRET_KEY": secrets.token_urlsafe(40), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
               "tutorial_project.asgi:application"]
        self.daphne = Process("tutorial daphne", cmd, TUTORIAL_DIR, env, base / "daphne.log", port)
        self._stoppers.append(self.daphne.stop)
        self.daphne.start()
        self.port = port
        return self

    def processes(self) -> dict[str, int]:
        """daphne's and Redis's PIDs."""
        return {"daphne": self.daphne.pid, "redis": self.redis.pid}

    def refresh(self) -> None:
        """Restart daphne (same port)."""
        self.daphne.stop()
        self.daphne.start()

    def client_config(self) -> dict:
        """``{"ws_base": "ws://.../ws/chat/", "origin": the page's origin}``."""
        return {"ws_base": f"ws://127.0.0.1:{self.port}/ws/chat/", "origin": f"http://127.0.0.1:{self.port}"}

    def logs(self) -> str:
        """The tail of daphne's log."""
        return tail(self.daphne.log_path) if hasattr(self, "daphne") else ""
