"""The JSON report's summary: per scenario and system the medians over rounds, the
maxima and sums of the counts, and the ratios to the baseline from the same run."""
from __future__ import annotations

import math
import statistics

from .. import config
from .figures import COUNTS, FIGURES


def build_report(meta: dict, records: list[dict]) -> dict:
    """The report: every run, then per scenario and system the median of each figure
    over the successful rounds, the maxima and sums of the counts, and the ratio of
    each median to the baseline's median from the same run: ``{"meta", "complete",
    "summary": {scenario: {system: {"rounds_ok", "rounds_failed", "errors", "median",
    "max", "sum", "censored", "ratio_to_baseline", ...}}}, "runs": records}``
    (``complete``: every run succeeded and the run was not aborted)."""
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
