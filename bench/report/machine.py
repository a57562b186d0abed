"""The machine and software a run was measured on (recorded in the JSON report)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """The machine and software the run was measured on."""
    from localservers import nats_binary, pocketbase_binary, redis_binary

    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    root = Path(__file__).resolve().parents[2]
    lscpu = {}
    for line in _run(["lscpu"]).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "Hypervisor vendor", "Thread(s) per core", "Core(s) per socket",
                           "BogoMIPS", "L3 cache"):
            lscpu[key.strip()] = value.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "lscpu": lscpu,
        "free_h": _run(["free", "-h"]),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "git_commit": _run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])),
        "versions": {
            **{d: _version(d) for d in ("Django", "channels", "channels-redis", "daphne", "Twisted", "redis",
                                         "nats-py", "hiredis", "uvloop", "websockets", "aiohttp", "psutil")},
            "redis-server": _run([str(redis_binary()), "--version"]),
            "nats-server": _run([str(nats_binary()), "--version"]),
            "pocketbase": _run([str(pocketbase_binary()), "--version"]),
        },
    }
