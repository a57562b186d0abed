"""What the orchestrator measures on a system's servers during one run: at each phase
the load generator reports, snapshots of their CPU time and RSS (``probe``), a sampled
RSS peak, the system's counters and its Redis's command stats, and the load
generator's own CPU; afterwards the run's server figures from them."""
from __future__ import annotations

import time

import psutil

from .probe import PeakSampler, Probe, cpu_delta
from .systems import System

MIB = 2 ** 20


class PhaseMeasurements:
    """The measurements of one run, taken in ``at_phase`` while the load generator
    waits for its OK: ``measure_start`` / ``measure_end`` around a live or replay run,
    ``idle_before`` / ``idle_connected`` for idle (which then holds ``settle_s`` and
    ``hold_s`` seconds of ``sizes``)."""

    def __init__(self, system: System, probe: Probe, client: psutil.Process, sizes: dict) -> None:
        self.system, self.probe, self.client, self.sizes = system, probe, client, sizes
        self.snaps: dict = {}
        self.client_cpu: dict = {}
        self.counters: dict = {}
        self.sampler: PeakSampler | None = None

    def at_phase(self, name: str) -> None:
        """Take what phase ``name`` calls for (other names: nothing)."""
        system, probe, snaps = self.system, self.probe, self.snaps
        if name == "measure_start":
            self.counters["start"] = system.counters()
            self.counters["redis_start"] = system.redis_commandstats()
            snaps["start"] = probe.snapshot()
            self.client_cpu["start"] = _cpu(self.client)
            self.sampler = PeakSampler(probe).start()
        elif name == "measure_end":
            snaps["end"] = probe.snapshot()
            self.client_cpu["end"] = _cpu(self.client)
            if self.sampler:
                snaps["peak"] = self.sampler.stop()
            self.counters["end"] = system.counters()
            self.counters["redis_end"] = system.redis_commandstats()
        elif name == "idle_before":
            time.sleep(1.0)  # let the previous run's closes finish
            snaps["before"] = probe.snapshot()
            self.sampler = PeakSampler(probe).start()
        elif name == "idle_connected":
            time.sleep(self.sizes["settle_s"])
            snaps["connected"] = probe.snapshot()
            time.sleep(self.sizes["hold_s"])
            snaps["held"] = probe.snapshot()
            if self.sampler:
                snaps["peak"] = self.sampler.stop()

    def stop(self) -> None:
        """Stop the RSS sampler if the run ended before the phase that stops it."""
        if self.sampler and "peak" not in self.snaps:
            self.sampler.stop()

    def figures(self, scenario: str, result: dict) -> dict:
        """The run record's fields from the measurements, in this order: ``server``
        (``server_figures``), ``system_counters`` (differences of the ``_total`` counters
        and of the redeliveries, the rest as at the end), ``redis_commands`` (``{command:
        {"calls", "usec"}}`` over the phase, most time first) and ``client_cpu_s`` (the
        load generator's CPU seconds), each only when it was measured."""
        fields: dict = {"server": server_figures(scenario, self.snaps, self.sizes, result)}
        counters = self.counters
        if counters.get("end"):
            before = counters.get("start", {})
            fields["system_counters"] = {
                k: v - before.get(k, 0) if k.endswith("_total") or k == "jetstream_num_redelivered" else v
                for k, v in counters["end"].items()}
        if counters.get("redis_end"):
            before = counters.get("redis_start", {})
            deltas = {cmd: {"calls": calls - before.get(cmd, (0, 0))[0], "usec": usec - before.get(cmd, (0, 0))[1]}
                      for cmd, (calls, usec) in counters["redis_end"].items()}
            fields["redis_commands"] = dict(sorted(((k, v) for k, v in deltas.items() if v["calls"]),
                                                   key=lambda kv: -kv[1]["usec"]))
        if self.client_cpu.get("end") is not None and self.client_cpu.get("start") is not None:
            fields["client_cpu_s"] = self.client_cpu["end"] - self.client_cpu["start"]
        return fields

    def gone(self) -> list[str]:
        """The names of the server processes some snapshot found gone (sorted)."""
        return sorted({g for s in self.snaps.values() if isinstance(s, dict) for g in s.get("gone", [])})


def _cpu(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def server_figures(scenario: str, snaps: dict, sizes: dict, result: dict) -> dict:
    """Server CPU and memory of one run from the probe's ``snaps``: the sampled RSS peak
    (MiB); for idle the RSS before and connected (MiB), its growth per connection (KiB,
    in all and per process), the CPU per connect (µs) and while idle (ms per s);
    otherwise the CPU seconds (in all, per process, and their system part), the
    measured seconds, the CPU per delivery (µs) and the RSS at the end (MiB)."""
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
