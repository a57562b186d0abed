"""The systems' servers across a benchmark: started, restarted, let settle between
runs and stopped, also when the orchestrator is interrupted (SIGTERM unwinds like
Ctrl-C); progress lines on stderr."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import psutil

from . import config
from .probe import Probe, cpu_delta
from .systems import SYSTEM_CLASSES, System


def say(text: str) -> None:
    """A progress line on stderr (stdout stays for the final table)."""
    print(text, file=sys.stderr, flush=True)


def sigterm_to_exit() -> None:
    """SIGTERM (e.g. a test timeout) unwinds like Ctrl-C, so every server is stopped."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def start_systems(names: list[str], base: Path, table: dict, errors: dict | None = None) -> dict[str, System]:
    """Start each system; one that fails to start is left out (its error goes in
    ``errors`` when given, else the exception propagates after stopping the others)."""
    users = config.users_needed(table)
    started: dict[str, System] = {}
    for name in names:
        t0 = time.monotonic()
        system = SYSTEM_CLASSES[name]()
        try:
            system.start(base / name, users)
        except BaseException as exc:
            system.stop()
            if errors is None or not isinstance(exc, Exception):
                stop_systems(started)
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
            say(f"[bench] {name} did not start: {errors[name]}")
            continue
        started[name] = system
        say(f"[bench] started {name} in {time.monotonic() - t0:.1f}s: "
            + ", ".join(f"{k}={v}" for k, v in system.processes().items()))
    return started


def stop_systems(systems: dict[str, System]) -> None:
    """Stop every started system, the last started first."""
    for system in reversed(list(systems.values())):
        system.stop()


def wait_quiet(system: System, max_s: float, threshold: float = 0.05, window: float = 0.5) -> float:
    """Wait until the system's servers use less than ``threshold`` of a core over
    ``window`` seconds (at most ``max_s``); returns the seconds waited."""
    t0 = time.monotonic()
    try:
        probe = Probe(system.processes())
    except psutil.Error:
        return 0.0
    prev = probe.snapshot()
    while time.monotonic() - t0 < max_s:
        time.sleep(window)
        cur = probe.snapshot()
        used, _ = cpu_delta(prev, cur)
        if used / (cur["t"] - prev["t"]) < threshold:
            break
        prev = cur
    return time.monotonic() - t0


def refresh(system: System) -> float | None:
    """Restart the system's connection-holding processes; returns the seconds it took
    (None when it failed: the run then measures the warm processes)."""
    t0 = time.monotonic()
    try:
        system.refresh()
    except Exception as exc:  # noqa: BLE001 - a failed restart shows as failed runs
        say(f"[bench] restarting {system.name} failed: {exc!r}")
        return None
    return time.monotonic() - t0
