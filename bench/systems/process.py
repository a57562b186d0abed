"""A server run as a plain child process (the tutorial's daphne), ready once its TCP
port accepts."""
from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from localservers._util import tail

from .base import StartError


class Process:
    """A child process logging to a file, ready once its TCP port accepts."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 port: int) -> None:
        self.name, self.cmd, self.cwd, self.env, self.log_path, self.port = name, cmd, cwd, env, log_path, port
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """The child's PID, None before start()."""
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 90.0) -> "Process":
        """Start the command (output to log_path) and wait until its port accepts; raises
        StartError when it exits or is not listening within `timeout` seconds.
        """
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise StartError(f"{self.name} not listening on {self.port} after {timeout:.0f}s:\n{tail(self.log_path)}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; no-op when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
