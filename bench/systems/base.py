"""What every system is to the orchestrator (``System``), and the error of one that
does not start."""
from __future__ import annotations

import sys
from pathlib import Path


class StartError(RuntimeError):
    """A system could not be started (the message carries the log tail)."""


class System:
    """One benchmarked system's servers (see ``bench.systems``): ``name`` is its name in
    ``config.SYSTEMS``; what ``start`` started (``_started``) is stopped by ``stop``."""

    name = "system"

    def __init__(self) -> None:
        self._stoppers: list = []

    def start(self, base: Path, users: int) -> "System":
        """Start the system's servers under `base` (data dirs, logs) with `users` PocketBase
        users where the system needs them; returns self; raises StartError.
        """
        raise NotImplementedError

    def processes(self) -> dict[str, int]:
        """{name: PID} of every server process whose CPU and memory are measured."""
        raise NotImplementedError

    def client_config(self) -> dict:
        """What the load generator needs to reach the system (URLs, tokens), JSON-able."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything this system started, newest first (never raises)."""
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"warning: stopping part of {self.name}: {exc!r}", file=sys.stderr)

    def _started(self, server):
        self._stoppers.append(server.stop)
        return server

    def logs(self) -> str:
        """The tail of the servers' logs, for a failed run's report."""
        return ""

    def counters(self) -> dict:
        """System-specific counters read before and after a measured phase (the report
        keeps their differences); empty unless a system has some."""
        return {}

    def after_run(self, record: dict) -> str | None:
        """Clean up after a run that left work behind (returns what was done, or None)."""
        return None

    def redis_commandstats(self) -> dict:
        """``{command: (calls, usec)}`` of the system's Redis (INFO commandstats), or {}."""
        server = getattr(self, "redis", None)
        if server is None:
            return {}
        import redis

        try:
            client = redis.Redis(host=server.host, port=server.port, socket_timeout=10)
            stats = client.info("commandstats")
            client.close()
        except redis.RedisError:
            return {}
        return {name.removeprefix("cmdstat_"): (v.get("calls", 0), v.get("usec", 0)) for name, v in stats.items()}

    def refresh(self) -> None:
        """Restart the processes that hold client connections (same ports, same data),
        so the idle scenario measures memory per connection on fresh processes and the
        next round does not inherit the memory of 2,000 connections."""


class OneServerSystem(System):
    """A system of one server, ``self.server`` (a ``localservers`` server that
    ``start`` sets): measured as the process ``process_name``, restarted in place (same
    port, same data) by ``refresh``, reached by its URL alone."""

    process_name = "server"

    def processes(self) -> dict[str, int]:
        """``{process_name: PID}`` of the server."""
        return {self.process_name: self.server.pid}

    def refresh(self) -> None:
        """Restart the server (same port, same data)."""
        self.server.restart()

    def client_config(self) -> dict:
        """``{"url": the server's URL}``."""
        return {"url": self.server.url}
