"""The orchestrator: start the systems, run every (round, scenario, system) with the
load generator in a child process (``job.run_one``), then build and write the report."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import config
from .job import run_one
from .lifecycle import refresh, say, sigterm_to_exit, start_systems, stop_systems, wait_quiet
from .report.files import write_reports
from .report.machine import machine_info
from .report.progress import progress_line
from .report.summary import build_report
from .systems import System


def rotate(items: list, k: int) -> list:
    """`items` rotated left by `k` (the system order of the k-th scenario run)."""
    k %= max(1, len(items))
    return items[k:] + items[:k]


def run(args) -> dict:
    """``python -m bench run``: returns the report (also written to ``args.out``)."""
    sigterm_to_exit()
    table = config.sizes(args.preset)
    for assignment in args.set or []:
        config.apply_override(table, assignment)
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
    meta = machine_info()
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
                    say("[bench] " + progress_line(rec))
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
        result = build_report(meta, records)
        paths = write_reports(result, out_dir, run_id)
        if not getattr(args, "keep_tmp", False):
            shutil.rmtree(base, ignore_errors=True)
        else:
            say(f"[bench] kept {base}")
    markdown = paths["md"].read_text()
    print(markdown)
    say(f"[bench] wrote {paths['json']} and {paths['md']} in {meta['total_s']:.0f}s")
    return result
