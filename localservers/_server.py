"""Base class: one real server as a child process, driven by mirakuru."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import IO, Any

from mirakuru import TCPExecutor
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

from ._util import free_port, tail

__all__ = ["ManagedServer", "ServerStartError", "AlreadyRunning", "ReadyExecutor"]


class ServerStartError(RuntimeError):
    """A server exited or did not become ready in time; the message has its log tail."""


class ReadyExecutor(TCPExecutor):
    """TCPExecutor that is started once the port accepts AND ``ready()`` is true.

    Like TCPExecutor it refuses to start (``AlreadyRunning``) when something
    already listens on the port, so we never talk to someone else's server.
    """

    def __init__(self, command: list[str], host: str, port: int, ready, **kwargs: Any) -> None:
        super().__init__(command, host=host, port=port, **kwargs)
        self._ready = ready

    def after_start_check(self) -> bool:
        if not super().after_start_check():
            return False
        try:
            return bool(self._ready())
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False


class ManagedServer:
    """A real server process on ``host:port`` with its data in ``data_dir``.

    Subclasses define :meth:`command` and :meth:`ready`. ``port`` defaults to a
    free port, kept for the object's whole life so :meth:`restart` reuses it.
    Output goes to ``log_path`` (default ``<data_dir>.log``), or to this
    process's own stdout/stderr when ``log_path == "inherit"``.
    ``timeout`` (seconds) bounds both start and stop.
    """

    name = "server"
    scheme = "tcp"

    def __init__(self, data_dir: str | Path, port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | Path | None = None, timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        if log_path == "inherit":
            self.log_path: Path | None = None
        else:
            self.log_path = Path(log_path) if log_path else self.data_dir.with_name(self.data_dir.name + ".log")
        self.timeout = timeout
        self._executor: ReadyExecutor | None = None
        self._log: IO[str] | None = None

    # -- to be defined by subclasses -------------------------------------------------
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server answers real requests (beyond accepting TCP)."""
        return True

    def before_start(self) -> None:
        """Hook run before each start (e.g. PocketBase's superuser upsert)."""

    # -- public API --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``scheme://host:port`` of the server."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None when it is not running."""
        if self._executor and self._executor.process:
            return self._executor.process.pid
        return None

    def running(self) -> bool:
        """True while the server process is alive."""
        return bool(self._executor and self._executor.running())

    def start(self) -> "ManagedServer":
        """Start the server and block until it is ready; returns self.

        Raises ``AlreadyRunning`` when something else listens on the port, and
        :class:`ServerStartError` (with the log tail) when the process exits or
        is not ready within ``timeout`` seconds. No-op when already running.
        """
        if self.running():
            return self
        self.before_start()
        out: Any = None
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", encoding="utf-8", buffering=1)
            out = self._log
        self._executor = ReadyExecutor(
            self.command(), host=self.host, port=self.port, ready=self.ready,
            cwd=str(self.data_dir), timeout=self.timeout, sleep=0.05,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
        )
        try:
            self._executor.start()
        except AlreadyRunning:
            self._close_log()
            self._executor = None
            raise
        except (TimeoutExpired, ProcessExitedWithError) as exc:
            self._close_log()
            self._executor = None
            raise ServerStartError(f"{self.name} on port {self.port} did not start: {exc}\n"
                                   f"--- {self.log_path} ---\n{self.log_tail()}") from exc
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``); waits for exit."""
        if self._executor is not None:
            try:
                self._executor.stop()
            except ProcessFinishedWithError:
                pass  # a non-zero exit on SIGTERM still means it is stopped
            self._executor = None
        self._close_log()

    def kill(self) -> None:
        """Kill at once with SIGKILL (a crash: no clean shutdown); waits for exit."""
        if self._executor is not None:
            self._executor.kill(sig=signal.SIGKILL)
            self._executor = None
        self._close_log()

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server process exits (or ``timeout`` seconds pass);
        returns its exit code, or None if it is still running / was never started.
        Raises nothing on timeout."""
        proc = self._executor.process if self._executor else None
        if proc is None:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self) -> "ManagedServer":
        """Stop (if running) and start again on the SAME port and data dir."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of this server's log file ('' when inherited)."""
        return tail(self.log_path, lines)

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running() else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
