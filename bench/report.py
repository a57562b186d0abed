"""Medians over rounds, ratios to the baseline, the JSON report and the Markdown table."""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from . import config

# Figures aggregated per (scenario, system): key -> how to read it from a run record.
def _latency(key: str):
    """A latency percentile; +inf when it falls among deliveries still pending at the
    deadline (censored), so medians over rounds stay honest."""
    def read(r: dict):
        lat = r.get("latency_ms") or {}
        if lat.get(key) is None and lat.get("censored_above") is not None:
            return math.inf
        return lat.get(key)
    return read


def _counter(name: str):
    """A relay counter read from the servers after the run (relay runs only)."""
    return lambda r: (r.get("system_counters") or {}).get(name)


def _field(name: str):
    """A figure the load generator wrote into the run record."""
    return lambda r: r.get(name)


def _server(name: str):
    """A figure the orchestrator measured on the server processes."""
    return lambda r: (r.get("server") or {}).get(name)


FIGURES = {
    "deliveries_per_s": _field("deliveries_per_s"),
    "latency_p50_ms": _latency("p50"),
    "latency_p90_ms": _latency("p90"),
    "latency_p99_ms": _latency("p99"),
    "latency_max_ms": _latency("max"),
    "latency_censored_above_ms": lambda r: (r.get("latency_ms") or {}).get("censored_above"),
    **{name: _field(name) for name in ("lost", "pending", "server_closed", "duplicated", "reordered")},
    "cpu_us_per_delivery": _server("cpu_us_per_delivery"),
    "rss_peak_mib": _server("rss_peak_mib"),
    **{name: _field(name) for name in (
        "duration_s", "accepted_per_s", "expected_deliveries", "deliveries", "publish_errors", "foreign",
        "ts_order_violations", "resume_s", "client_cpu_s")},
    "server_cpu_s": _server("cpu_s"),
    **{name: _server(name) for name in ("rss_growth_per_conn_kib", "idle_cpu_ms_per_s", "connect_cpu_us_per_conn")},
    "connects_per_s": _field("connects_per_s"),
    "alive": _field("alive"),
    "worker_events": _counter("relay_worker_events_total"),
    "worker_redeliveries": _counter("relay_worker_redeliveries_total"),
    "gap_fills": _counter("relay_gap_fills_total"),
}
# Counts where one bad round matters: the report also keeps their maximum and sum.
COUNTS = ("lost", "pending", "duplicated", "reordered", "foreign", "ts_order_violations", "publish_errors",
          "server_closed")

# Markdown columns per scenario: (figure, header, decimals).
LIVE_COLUMNS = [
    ("deliveries_per_s", "deliveries/s", 0), ("latency_p50_ms", "p50 ms", 1), ("latency_p90_ms", "p90 ms", 1),
    ("latency_p99_ms", "p99 ms", 1), ("latency_max_ms", "max ms", 1), ("lost", "lost", 0),
    ("duplicated", "dup", 0), ("reordered", "reord", 0), ("publish_errors", "refused", 0),
    ("cpu_us_per_delivery", "CPU µs/delivery", 1), ("rss_peak_mib", "peak RSS MiB", 0),
]
COLUMNS = {
    "fanout": LIVE_COLUMNS,
    "rooms": LIVE_COLUMNS,
    "latency": LIVE_COLUMNS,
    "replay": [("deliveries_per_s", "deliveries/s", 0), ("resume_s", "time to all s", 2), ("lost", "lost", 0),
               ("duplicated", "dup", 0), ("reordered", "reord", 0), ("cpu_us_per_delivery", "CPU µs/delivery", 1),
               ("rss_peak_mib", "peak RSS MiB", 0)],
    "idle": [("alive", "open", 0), ("connects_per_s", "connects/s", 0),
             ("rss_growth_per_conn_kib", "RSS KiB/conn", 1), ("connect_cpu_us_per_conn", "CPU µs/connect", 0),
             ("idle_cpu_ms_per_s", "idle CPU ms/s", 1), ("rss_peak_mib", "peak RSS MiB", 0)],
}
# Counts shown without their ratio in the table (the JSON has every ratio).
NO_RATIO = set(COUNTS) | {"alive"}
LOWER_IS_BETTER = {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms", "lost", "duplicated",
                   "reordered", "cpu_us_per_delivery", "rss_peak_mib", "resume_s", "rss_growth_per_conn_kib",
                   "connect_cpu_us_per_conn", "idle_cpu_ms_per_s", "duration_s"}

SCENARIO_TITLES = {
    "fanout": "fanout: 1 channel, {subscribers:,} subscribers, 1 publisher, {messages:,} messages as fast as accepted",
    "rooms": "rooms: {rooms:,} channels of 2 users, each user publishes {messages_per_user:,}",
    "latency": "latency: 1 channel, {subscribers:,} subscribers, {rate:,} messages/s for {duration_s} s",
    "replay": "replay: one subscriber gets {messages:,} missed messages (relay: subscribe with since + history "
              "pages of {page:,}; PocketBase: records API pages; tutorial and NATS: live, no history)",
    "idle": "idle: {connections:,} open subscribed connections",
}


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
    root = Path(__file__).resolve().parent.parent
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


def progress_line(rec: dict) -> str:
    """One line per run for the console."""
    head = f"round {rec['round']} {rec['scenario']:<7} {rec['system']:<19}"
    if not rec.get("ok"):
        return f"{head} FAILED: {rec.get('error')}"
    srv = rec.get("server") or {}
    if rec["scenario"] == "idle":
        return (f"{head} {rec.get('alive')}/{rec.get('connections')} open, "
                f"{_f(srv.get('rss_growth_per_conn_kib'), 1)} KiB/conn, "
                f"idle {_f(srv.get('idle_cpu_ms_per_s'), 1)} ms CPU/s, {rec.get('wall_s', 0):.0f}s")
    lat = rec.get("latency_ms") or {}
    return (f"{head} {rec.get('deliveries')}/{rec.get('expected_deliveries')} delivered, "
            f"{_f(rec.get('deliveries_per_s'), 0)}/s, p50 {_f(lat.get('p50'), 1)} p99 {_f(lat.get('p99'), 1)} ms, "
            f"lost {rec.get('lost')}{' pending ' + str(rec['pending']) if rec.get('pending') else ''} "
            f"dup {rec.get('duplicated')} reord {rec.get('reordered')}"
            f"{' refused ' + str(rec['publish_errors']) if rec.get('publish_errors') else ''}"
            f"{' closed ' + str(rec['server_closed']) if rec.get('server_closed') else ''}, "
            f"{_f(srv.get('cpu_us_per_delivery'), 1)} µs CPU/delivery ({rec.get('stopped')}, "
            f"{rec.get('wall_s', 0):.0f}s)")


def _f(value, decimals: int) -> str:
    if value is None:
        return "—"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def build(meta: dict, records: list[dict]) -> dict:
    """The report: every run, then per scenario and system the median of each figure
    over the successful rounds, the maxima and sums of the counts, and the ratio of
    each median to the baseline's median from the same run."""
    summary: dict = {}
    for rec in records:
        cell = summary.setdefault(rec["scenario"], {}).setdefault(
            rec["system"], {"rounds_ok": 0, "rounds_failed": 0, "errors": []})
        if rec.get("ok"):
            cell["rounds_ok"] += 1
        else:
            cell["rounds_failed"] += 1
            cell["errors"].append(rec.get("error"))
    for scenario, systems in summary.items():
        for system, cell in systems.items():
            ok = [r for r in records if r["scenario"] == scenario and r["system"] == system and r.get("ok")]
            medians, maxima, sums, censored = {}, {}, {}, {}
            for key, read in FIGURES.items():
                values = [v for v in (read(r) for r in ok) if isinstance(v, (int, float))]
                if values:
                    median = statistics.median(values)
                    if math.isinf(median):  # most rounds had it among the pending deliveries
                        bounds = [b for b in (FIGURES["latency_censored_above_ms"](r) for r in ok) if b]
                        censored[key] = min(bounds) if bounds else None
                        median = None
                    medians[key] = median
                    if key in COUNTS:
                        maxima[key], sums[key] = max(values), sum(values)
            cell["median"], cell["max"], cell["sum"], cell["censored"] = medians, maxima, sums, censored
            cell["stopped"] = [r.get("stopped") for r in ok]
            cell["idle_closed"] = max((r["connections"] - r["alive"] for r in ok
                                       if r.get("alive") is not None and r.get("connections")), default=0)
            cell["cleanup"] = [r.get("cleanup") for r in ok if r.get("cleanup")]
            cell["publish_error_samples"] = [r.get("publish_error_sample") for r in ok
                                             if r.get("publish_error_sample")][:3]
    for scenario, systems in summary.items():
        base = (systems.get(config.BASELINE) or {}).get("median", {})
        for system, cell in systems.items():
            cell["ratio_to_baseline"] = {
                key: value / base[key] for key, value in cell["median"].items()
                if isinstance(value, (int, float)) and isinstance(base.get(key), (int, float)) and base[key] != 0
            }
    complete = all(r.get("ok") for r in records) and bool(records) and not meta.get("aborted")
    return {"meta": meta, "complete": complete, "summary": summary, "runs": records}


def markdown(result: dict) -> str:
    """The Markdown tables of a run (`result` as aggregate() returns it): one table per
    scenario, medians with ratios to channels_tutorial, then the notes.
    """
    meta = result["meta"]
    sizes = meta["sizes"]
    lines = [
        f"# Benchmark {meta['run_id']}",
        "",
        f"{meta['rounds']} round(s), systems interleaved; medians over rounds; `(×r)` = ratio to "
        f"`{config.BASELINE}`'s median from the same run (for throughput higher is better, for latency, "
        f"CPU and memory lower is better).",
        f"Machine: {meta['nproc']} CPUs ({meta['cpu_model']}), load average at start "
        f"{', '.join(f'{x:.2f}' for x in meta['loadavg_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_end', (0, 0, 0)))}; git {meta['git_commit']}"
        f"{' (dirty)' if meta['git_dirty'] else ''}; total {meta.get('total_s', 0):.0f} s."
        + ("" if result["complete"] else " **Incomplete: some runs failed (see the JSON report).**"),
        "",
    ]
    for scenario in meta["scenarios"]:
        systems = result["summary"].get(scenario, {})
        title = SCENARIO_TITLES[scenario].format(**sizes[scenario])
        lines += [f"## {title}", ""]
        cols = COLUMNS[scenario]
        lines.append("| system | " + " | ".join(h for _, h, _ in cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for system in meta["systems"]:
            cell = systems.get(system)
            if not cell:
                continue
            if not cell["median"]:
                lines.append(f"| {system} | " + " | ".join("failed" for _ in cols) + " |")
                continue
            cells = []
            for key, _, dec in cols:
                value = cell["median"].get(key)
                text = _f(value, dec)
                if key in cell["censored"]:
                    bound = cell["censored"][key]
                    text = f"> {_f(bound, 0)}" if bound else "censored"
                if key in COUNTS and key in cell["max"] and cell["max"][key] != (value or 0):
                    text += f" (max {_f(cell['max'][key], 0)})"
                if key == "lost" and cell["median"].get("pending"):
                    text += f" ({_f(cell['median']['pending'], 0)} pending)"
                ratio = cell["ratio_to_baseline"].get(key)
                if system != config.BASELINE and ratio is not None and value is not None and key not in NO_RATIO:
                    text += f" (×{ratio:.2f})" if ratio < 100 else f" (×{ratio:.0f})"
                cells.append(text)
            note = "" if not cell["rounds_failed"] else f" ({cell['rounds_failed']} failed)"
            lines.append(f"| {system}{note} | " + " | ".join(cells) + " |")
        lines.append("")
        notes = scenario_notes(meta["systems"], systems)
        if notes:
            lines += [f"- {n}" for n in notes] + [""]
    lines += [
        "Deliveries/s: distinct expected deliveries / (last delivery − first send). Latency: receive time "
        "− send time written in the message (paced scenarios: the scheduled send time). CPU: user+system "
        "time of all the system's server processes during the measured phase, per delivery. Peak RSS: "
        "highest sampled sum of their RSS during it. lost/dup/reord: per subscriber connection, against "
        "the messages the system accepted.",
        "",
    ]
    return "\n".join(lines)


def scenario_notes(order: list[str], systems: dict) -> list[str]:
    """What the table cannot show: runs cut short, refused publishes, connections the
    server closed, the relay's redeliveries and gap fills, failures."""
    notes = []
    for system in order:
        cell = systems.get(system)
        if not cell:
            continue
        med, mx = cell.get("median", {}), cell.get("max", {})
        stops = [s for s in cell.get("stopped", []) if s and s != "complete"]
        if stops:
            notes.append(f"{system}: run ended by `{'`, `'.join(sorted(set(stops)))}` in {len(stops)} of "
                         f"{len(cell['stopped'])} rounds (quiet: no delivery for quiet_s, the rest counted "
                         f"lost; deadline: the rest counted pending, latencies censored).")
        if mx.get("publish_errors"):
            notes.append(f"{system}: up to {mx['publish_errors']:,.0f} publishes refused per round; e.g. "
                         f"`{json.dumps(cell['publish_error_samples'][:1])[:200]}`.")
        if mx.get("server_closed"):
            notes.append(f"{system}: up to {mx['server_closed']:,.0f} connections closed by the server during "
                         f"a round.")
        if med.get("worker_events"):
            notes.append(f"{system}: relay_worker handled {med['worker_events']:,.0f} events per round (median), "
                         f"{med.get('worker_redeliveries', 0):,.0f} of them JetStream redeliveries; "
                         f"{med.get('gap_fills', 0):,.0f} gap fills from the history.")
        for cleanup in sorted(set(cell.get("cleanup", []))):
            notes.append(f"{system}: after a round: {cleanup}.")
        if cell.get("idle_closed"):
            notes.append(f"{system}: up to {cell['idle_closed']:,} of the idle connections were closed by the "
                         f"server (or never opened).")
        if cell.get("rounds_failed"):
            notes.append(f"{system}: {cell['rounds_failed']} round(s) failed: "
                         f"{'; '.join(str(e)[:200] for e in cell['errors'][:2])}")
    return notes


def write(result: dict, out_dir: Path, run_id: str) -> dict[str, Path]:
    """Write `<run_id>.json` and `.md` (and `latest.*` copies) into `out_dir`; returns
    {"json": path, "md": path}.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{run_id}.json", "md": out_dir / f"{run_id}.md"}
    paths["json"].write_text(json.dumps(result, indent=1, default=str))
    paths["md"].write_text(markdown(result))
    shutil.copyfile(paths["json"], out_dir / "latest.json")
    shutil.copyfile(paths["md"], out_dir / "latest.md")
    return paths
