"""Server-side measurements with psutil: CPU time (user + system) and RSS of a
system's processes (and their children), as snapshots and as a sampled peak."""
from __future__ import annotations

import os
import threading
import time

import psutil


def sched_cpu_s(pid: int) -> float | None:
    """CPU time (s, ns precision) of the live threads of ``pid`` from
    /proc/PID/task/*/schedstat; None when unavailable."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # the thread just ended
    except OSError:
        return None
    return total / 1e9


class Probe:
    """Measures the processes ``{name: pid}`` of one system."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}

    def _tree(self, proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]

    def snapshot(self) -> dict:
        """``{"t": monotonic s, "cpu": {name: s}, "sched": {name: s}, "system": {name: s},
        "rss": {name: bytes}}``: ``cpu`` is user+system time from /proc/PID/stat (clock
        ticks: 10 ms steps, and it includes threads that ended), ``sched`` the same from
        the threads' schedstat (ns steps, live threads only), ``system`` the kernel part
        of ``cpu``. A process that is gone counts as 0 (listed in ``gone``)."""
        cpu, sched, system, rss, gone = {}, {}, {}, {}, []
        for name, proc in self.procs.items():
            c = k = r = 0
            s: float | None = 0.0
            try:
                for p in self._tree(proc):
                    try:
                        times = p.cpu_times()
                        c += times.user + times.system
                        k += times.system
                        r += p.memory_info().rss
                    except psutil.Error:
                        pass
                    fine = sched_cpu_s(p.pid)
                    s = None if fine is None or s is None else s + fine
                if not proc.is_running():
                    gone.append(name)
            except psutil.Error:
                gone.append(name)
            cpu[name], sched[name], system[name], rss[name] = c, s, k, r
        return {"t": time.monotonic(), "cpu": cpu, "sched": sched, "system": system, "rss": rss,
                "gone": gone}

    def processes(self) -> list[psutil.Process]:
        """The probed processes and their children, as they are now."""
        return [p for proc in self.procs.values() for p in self._tree(proc)]

    @staticmethod
    def rss_total(processes: list[psutil.Process]) -> int:
        """Sum of the resident set sizes (bytes) of ``processes`` still alive."""
        total = 0
        for p in processes:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total


class PeakSampler:
    """Samples the total RSS of a probe every ``interval`` seconds in a thread;
    ``peak`` is the highest total seen between ``start()`` and ``stop()``."""

    def __init__(self, probe: Probe, interval: float = 0.1) -> None:
        self.probe, self.interval = probe, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "PeakSampler":
        """Take a first sample and start sampling the RSS sum in a thread (every interval)."""
        self._processes = self.probe.processes()
        self.peak = max(self.peak, self.probe.rss_total(self._processes))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.probe.rss_total(self._processes))

    def stop(self) -> int:
        """Stop sampling; returns the highest RSS sum seen (bytes)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak = max(self.peak, self.probe.rss_total(self.probe.processes()))
        return self.peak


def cpu_delta(a: dict, b: dict) -> tuple[float, dict]:
    """(total seconds, {name: seconds}) of CPU time between two snapshots: the precise
    schedstat difference, unless the tick-based one is clearly larger (a thread ended
    in between, taking its schedstat with it)."""
    per = {}
    for name in b["cpu"]:
        ticks = max(0.0, b["cpu"][name] - a["cpu"].get(name, 0.0))
        fine_a, fine_b = a.get("sched", {}).get(name), b.get("sched", {}).get(name)
        if fine_a is None or fine_b is None:
            per[name] = ticks
            continue
        fine = max(0.0, fine_b - fine_a)
        per[name] = ticks if ticks > fine + 0.03 else fine
    return sum(per.values()), per
