"""The Markdown report: one table per scenario (medians with their ratios to the
baseline), the notes under it, the definitions at the end."""
from __future__ import annotations

import json
from typing import Iterator

from .. import config
from .figures import COUNTS

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

# The heading of each scenario's table, formatted with its sizes.
SCENARIO_TITLES = {
    "fanout": "fanout: 1 channel, {subscribers:,} subscribers, 1 publisher, {messages:,} messages as fast as accepted",
    "rooms": "rooms: {rooms:,} channels of 2 users, each user publishes {messages_per_user:,}",
    "latency": "latency: 1 channel, {subscribers:,} subscribers, {rate:,} messages/s for {duration_s} s",
    "replay": "replay: one subscriber gets {messages:,} missed messages (relay: subscribe with since + history "
              "pages of {page:,}; PocketBase: records API pages; tutorial and NATS: live, no history)",
    "idle": "idle: {connections:,} open subscribed connections",
}


def markdown(result: dict) -> str:
    """The Markdown tables of a run (``result`` as ``summary.build_report`` returns
    it): one table per scenario, medians with ratios to channels_tutorial, then the
    notes."""
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
                text = figure_text(value, dec)
                if key in cell["censored"]:
                    bound = cell["censored"][key]
                    text = f"> {figure_text(bound, 0)}" if bound else "censored"
                if key in COUNTS and key in cell["max"] and cell["max"][key] != (value or 0):
                    text += f" (max {figure_text(cell['max'][key], 0)})"
                if key == "lost" and cell["median"].get("pending"):
                    text += f" ({figure_text(cell['median']['pending'], 0)} pending)"
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
    """What the table cannot show, per system in ``order`` (``system_notes``), each note
    prefixed with the system's name."""
    return [f"{system}: {note}" for system in order if systems.get(system)
            for note in system_notes(systems[system])]


def system_notes(cell: dict) -> Iterator[str]:
    """The notes on one system's ``cell`` of the summary: runs cut short, refused
    publishes, connections the server closed, the relay's redeliveries and gap fills,
    the clean-ups after rounds, idle connections closed, failures."""
    med, mx = cell.get("median", {}), cell.get("max", {})
    stops = [s for s in cell.get("stopped", []) if s and s != "complete"]
    if stops:
        yield (f"run ended by `{'`, `'.join(sorted(set(stops)))}` in {len(stops)} of {len(cell['stopped'])} "
               f"rounds (quiet: no delivery for quiet_s, the rest counted lost; deadline: the rest counted "
               f"pending, latencies censored).")
    if mx.get("publish_errors"):
        yield (f"up to {mx['publish_errors']:,.0f} publishes refused per round; e.g. "
               f"`{json.dumps(cell['publish_error_samples'][:1])[:200]}`.")
    if mx.get("server_closed"):
        yield f"up to {mx['server_closed']:,.0f} connections closed by the server during a round."
    if med.get("worker_events"):
        yield (f"relay_worker handled {med['worker_events']:,.0f} events per round (median), "
               f"{med.get('worker_redeliveries', 0):,.0f} of them JetStream redeliveries; "
               f"{med.get('gap_fills', 0):,.0f} gap fills from the history.")
    for cleanup in sorted(set(cell.get("cleanup", []))):
        yield f"after a round: {cleanup}."
    if cell.get("idle_closed"):
        yield f"up to {cell['idle_closed']:,} of the idle connections were closed by the server (or never opened)."
    if cell.get("rounds_failed"):
        yield f"{cell['rounds_failed']} round(s) failed: {'; '.join(str(e)[:200] for e in cell['errors'][:2])}"


def figure_text(value, decimals: int) -> str:
    """`value` with thousands separators and `decimals` decimals; "—" for None."""
    if value is None:
        return "—"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"
