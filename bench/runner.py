"""The orchestrator: start the systems, run every (round, scenario, system) with the
load generator in a child process, measure the servers around its measured phase."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import psutil

from . import config, report
from .probe import PeakSampler, Probe, cpu_delta
from .systems import SYSTEM_CLASSES, System

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 2 ** 20


def say(text: str) -> None:
    """A progress line on stderr (stdout stays for the final table)."""
    print(text, file=sys.stderr, flush=True)


def _sigterm_to_exit() -> None:
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


def run_one(system: System, scenario: str, round_no: int, table: dict, workdir: Path,
            on_phase: Callable[[str], None] | None = None) -> dict:
    """One scenario against one system; returns the run's record (load-generator result
    plus server-side CPU and memory)."""
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
    client = psutil.Process(proc.pid)
    snaps: dict = {}
    client_cpu: dict = {}
    counters: dict = {}
    sampler: PeakSampler | None = None
    t_start = time.monotonic()
    try:
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if not line.startswith("PHASE "):
                continue
            name = line.split()[1]
            if name == "measure_start":
                counters["start"] = system.counters()
                counters["redis_start"] = system.redis_commandstats()
                snaps["start"] = probe.snapshot()
                client_cpu["start"] = _cpu(client)
                sampler = PeakSampler(probe).start()
            elif name == "measure_end":
                snaps["end"] = probe.snapshot()
                client_cpu["end"] = _cpu(client)
                if sampler:
                    snaps["peak"] = sampler.stop()
                counters["end"] = system.counters()
                counters["redis_end"] = system.redis_commandstats()
            elif name == "idle_before":
                time.sleep(1.0)  # let the previous run's closes finish
                snaps["before"] = probe.snapshot()
                sampler = PeakSampler(probe).start()
            elif name == "idle_connected":
                time.sleep(sizes["settle_s"])
                snaps["connected"] = probe.snapshot()
                time.sleep(sizes["hold_s"])
                snaps["held"] = probe.snapshot()
                if sampler:
                    snaps["peak"] = sampler.stop()
            if on_phase:
                on_phase(name)
            proc.stdin.write("OK\n")
            proc.stdin.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        if sampler and "peak" not in snaps:
            sampler.stop()
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
    record["server"] = server_figures(scenario, snaps, sizes, result)
    if counters.get("end"):
        before = counters.get("start", {})
        record["system_counters"] = {
            k: v - before.get(k, 0) if k.endswith("_total") or k == "jetstream_num_redelivered" else v
            for k, v in counters["end"].items()}
    if counters.get("redis_end"):
        before = counters.get("redis_start", {})
        deltas = {cmd: {"calls": calls - before.get(cmd, (0, 0))[0], "usec": usec - before.get(cmd, (0, 0))[1]}
                  for cmd, (calls, usec) in counters["redis_end"].items()}
        record["redis_commands"] = dict(sorted(((k, v) for k, v in deltas.items() if v["calls"]),
                                               key=lambda kv: -kv[1]["usec"]))
    if client_cpu.get("end") is not None and client_cpu.get("start") is not None:
        record["client_cpu_s"] = client_cpu["end"] - client_cpu["start"]
    gone = sorted({g for s in snaps.values() if isinstance(s, dict) for g in s.get("gone", [])})
    if gone:
        record["ok"] = False
        record["error"] = (record.get("error") or "") + f" server process gone: {gone}"
    if not record.get("ok"):
        record["log_tail"] = _tail(log_path)
    return record


def _cpu(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def server_figures(scenario: str, snaps: dict, sizes: dict, result: dict) -> dict:
    """Server CPU and memory of one run from the snapshots."""
    fig: dict = {}
    if "peak" in snaps:
        fig["rss_peak_mib"] = snaps["peak"] / MIB
    if scenario == "idle":
        if {"before", "connected", "held"} <= snaps.keys():
            n = sizes["connections"]
            before = sum(snaps["before"]["rss"].values())
            connected = sum(snaps["connected"]["rss"].values())
            fig["rss_before_mib"] = before / MIB
            fig["rss_connected_mib"] = connected / MIB
            fig["rss_growth_per_conn_kib"] = (connected - before) / n / 1024
            fig["rss_growth_per_process_kib"] = {
                k: (snaps["connected"]["rss"][k] - snaps["before"]["rss"][k]) / n / 1024
                for k in snaps["connected"]["rss"]}
            connect_cpu, per = cpu_delta(snaps["before"], snaps["connected"])
            fig["connect_cpu_us_per_conn"] = connect_cpu * 1e6 / n
            idle_cpu, per_idle = cpu_delta(snaps["connected"], snaps["held"])
            held = snaps["held"]["t"] - snaps["connected"]["t"]
            fig["idle_cpu_ms_per_s"] = idle_cpu * 1000 / held if held else None
            fig["idle_cpu_ms_per_s_per_process"] = {k: v * 1000 / held for k, v in per_idle.items()} if held else {}
        return fig
    if {"start", "end"} <= snaps.keys():
        cpu, per = cpu_delta(snaps["start"], snaps["end"])
        fig["cpu_s"] = cpu
        fig["cpu_s_per_process"] = per
        fig["cpu_system_s_per_process"] = {
            k: max(0.0, v - snaps["start"]["system"].get(k, 0.0)) for k, v in snaps["end"]["system"].items()}
        fig["measured_s"] = snaps["end"]["t"] - snaps["start"]["t"]
        deliveries = result.get("deliveries") or 0
        fig["cpu_us_per_delivery"] = cpu * 1e6 / deliveries if deliveries else None
        fig["rss_end_mib"] = sum(snaps["end"]["rss"].values()) / MIB
    return fig


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


def rotate(items: list, k: int) -> list:
    """`items` rotated left by `k` (the system order of the k-th scenario run)."""
    k %= max(1, len(items))
    return items[k:] + items[:k]


def run(args) -> dict:
    """``python -m bench run``: returns the report (also written to ``args.out``)."""
    _sigterm_to_exit()
    table = config.sizes(args.preset)
    for assignment in args.set or []:
        apply_override(table, assignment)
    if args.window:
        table["common"]["window"] = args.window
    systems = args.systems
    scenarios = args.scenarios
    rounds = args.rounds or (1 if args.quick else 3)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S") + ("" if args.preset == "default" else f"-{args.preset}")
    base = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    workdir = base / "runs"
    workdir.mkdir()
    meta = report.machine_info()
    meta.update({"run_id": run_id, "argv": sys.argv, "preset": args.preset, "quick": args.quick, "rounds": rounds, "systems": systems,
                 "scenarios": scenarios, "sizes": table, "baseline": config.BASELINE, "tmp_dir": str(base),
                 "loadavg_start": os.getloadavg()})
    say(f"[bench] run {run_id}: {rounds} round(s) x {scenarios} x {systems}; servers and logs in {base}")
    t0 = time.monotonic()
    records: list[dict] = []
    running: dict[str, System] = {}
    try:
        start_errors: dict[str, str] = {}
        running = start_systems(systems, base, table, start_errors)
        meta["startup_s"] = time.monotonic() - t0
        meta["start_errors"] = start_errors
        broken: set[str] = set(start_errors)
        for r in range(rounds):
            for si, scenario in enumerate(scenarios):
                for name in rotate(systems, r + si):
                    if name in broken:
                        records.append({"system": name, "scenario": scenario, "round": r, "ok": False,
                                        "error": start_errors.get(name, "skipped: a server process of this "
                                                                        "system died earlier")})
                        continue
                    system = running[name]
                    if scenario == "idle":
                        refreshed = refresh(system)
                    rec = run_one(system, scenario, r, table, workdir)
                    records.append(rec)
                    if scenario == "idle":
                        rec["refreshed_before_s"] = refreshed
                        rec["refreshed_after_s"] = refresh(system)
                    cleanup = running[name].after_run(rec)
                    if cleanup:
                        rec["cleanup"] = cleanup
                        say(f"[bench]   {name}: {cleanup}")
                    rec["settle_after_s"] = wait_quiet(running[name], table["common"]["settle_max_s"])
                    say("[bench] " + report.progress_line(rec))
                    if not rec.get("ok"):
                        say(f"[bench]   error: {rec.get('error')}\n{rec.get('log_tail', '')}")
                        if "server process gone" in (rec.get("error") or ""):
                            broken.add(name)
                            say(running[name].logs())
    except BaseException:
        traceback.print_exc()
        meta["aborted"] = True
        raise
    finally:
        stop_systems(running)
        meta["total_s"] = time.monotonic() - t0
        meta["loadavg_end"] = os.getloadavg()
        result = report.build(meta, records)
        paths = report.write(result, out_dir, run_id)
        if not getattr(args, "keep_tmp", False):
            shutil.rmtree(base, ignore_errors=True)
        else:
            say(f"[bench] kept {base}")
    markdown = paths["md"].read_text()
    print(markdown)
    say(f"[bench] wrote {paths['json']} and {paths['md']} in {meta['total_s']:.0f}s")
    return result


def apply_override(table: dict, assignment: str) -> None:
    """``scenario.key=value`` (or ``common.key=value``): a number."""
    path, _, value = assignment.partition("=")
    scope, _, key = path.partition(".")
    if scope not in table or key not in table[scope]:
        raise SystemExit(f"--set: unknown setting {path!r}; known: "
                         + ", ".join(f"{s}.{k}" for s, v in table.items() for k in v))
    table[scope][key] = float(value) if "." in value else int(value)
