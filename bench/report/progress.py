"""The console's line per finished run."""
from __future__ import annotations

from .tables import figure_text


def progress_line(rec: dict) -> str:
    """One line per run for the console (stderr): deliveries, rate, p50 and p99 (ms),
    the counts, CPU per delivery (µs) and how the run ended; for idle the connections
    open, RSS per connection (KiB) and idle CPU (ms per s)."""
    head = f"round {rec['round']} {rec['scenario']:<7} {rec['system']:<19}"
    if not rec.get("ok"):
        return f"{head} FAILED: {rec.get('error')}"
    srv = rec.get("server") or {}
    if rec["scenario"] == "idle":
        return (f"{head} {rec.get('alive')}/{rec.get('connections')} open, "
                f"{figure_text(srv.get('rss_growth_per_conn_kib'), 1)} KiB/conn, "
                f"idle {figure_text(srv.get('idle_cpu_ms_per_s'), 1)} ms CPU/s, {rec.get('wall_s', 0):.0f}s")
    lat = rec.get("latency_ms") or {}
    return (f"{head} {rec.get('deliveries')}/{rec.get('expected_deliveries')} delivered, "
            f"{figure_text(rec.get('deliveries_per_s'), 0)}/s, "
            f"p50 {figure_text(lat.get('p50'), 1)} p99 {figure_text(lat.get('p99'), 1)} ms, "
            f"lost {rec.get('lost')}{' pending ' + str(rec['pending']) if rec.get('pending') else ''} "
            f"dup {rec.get('duplicated')} reord {rec.get('reordered')}"
            f"{' refused ' + str(rec['publish_errors']) if rec.get('publish_errors') else ''}"
            f"{' closed ' + str(rec['server_closed']) if rec.get('server_closed') else ''}, "
            f"{figure_text(srv.get('cpu_us_per_delivery'), 1)} µs CPU/delivery ({rec.get('stopped')}, "
            f"{rec.get('wall_s', 0):.0f}s)")
