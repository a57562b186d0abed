"""The figures aggregated per (scenario, system), each read from a run record."""
from __future__ import annotations

import math


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


# key -> how to read the figure from a run record (None or absent: not measured).
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
