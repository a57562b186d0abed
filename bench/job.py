"""One job: a scenario against one system, with the load generator
(``python -m bench.loadgen``) in a child process, driven through its phases while
``measure.PhaseMeasurements`` measures the servers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

from .measure import PhaseMeasurements
from .probe import Probe
from .systems import System

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_one(system: System, scenario: str, round_no: int, table: dict, workdir: Path,
            on_phase: Callable[[str], None] | None = None) -> dict:
    """One scenario against one system; returns the run's record (load-generator result
    plus server-side CPU and memory). ``on_phase(name)`` is called at each phase after
    the measurements, before the load generator goes on."""
    tag = f"r{round_no}-{scenario}-{system.name}"
    out_path = workdir / f"{tag}.json"
    log_path = workdir / f"{tag}.log"
    sizes = table[scenario]
    common = {**table["common"], "deadline_s": float(sizes.get("deadline_s", 120.0))}
    job = {"system": system.name, "scenario": scenario, "round": round_no, "sizes": sizes, "common": common,
           "config": system.client_config(), "out": str(out_path),
           "channel": f"b{os.getpid()}_{round_no}_{scenario}_{int(time.time() * 1000) % 10**8}"}
    record: dict = {"system": system.name, "scenario": scenario, "round": round_no}
    try:
        probe = Probe(system.processes())
    except psutil.Error as exc:
        record.update(ok=False, error=f"server process missing: {exc!r}")
        return record
    # Hard limit for the whole child: setup + measured phase + analysis.
    limit = common["deadline_s"] * 2 + 180
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen"], cwd=REPO_ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
    watchdog = threading.Timer(limit, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    measured = PhaseMeasurements(system, probe, psutil.Process(proc.pid), sizes)
    t_start = time.monotonic()
    try:
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if not line.startswith("PHASE "):
                continue
            name = line.split()[1]
            measured.at_phase(name)
            if on_phase:
                on_phase(name)
            proc.stdin.write("OK\n")
            proc.stdin.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        measured.stop()
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        watchdog.cancel()
    record["wall_s"] = time.monotonic() - t_start
    try:
        result = json.loads(out_path.read_text())
    except (OSError, ValueError):
        result = {"ok": False, "error": f"the load generator left no result (exit {proc.returncode}); "
                                        f"see {log_path}"}
    record.update(result)
    record.update(measured.figures(scenario, result))
    gone = measured.gone()
    if gone:
        record["ok"] = False
        record["error"] = (record.get("error") or "") + f" server process gone: {gone}"
    if not record.get("ok"):
        record["log_tail"] = _tail(log_path)
    return record


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
