"""``python -m bench profile``: one system (default: the relay) under one scenario with
py-spy attached to its Python server processes (the relay's daphne and relay_worker, the
tutorial's daphne) during the measured phase (sampling, ``--nonblocking``).

Two samplers per process: one takes every non-idle thread (time in system calls
included), the other (``--gil``) only the thread holding the GIL, i.e. the Python work
that serialises the process. Writes, in ``--out``: the raw collapsed stacks
(``profile-<id>-<process>[-gil].txt``, for flamegraph.pl or speedscope.app) and
``profile-<id>.md`` with the time per package and the top functions by self and by
inclusive time. Shares are of the samples taken (idle threads are not sampled).
"""
from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import config
from .job import run_one
from .lifecycle import say, sigterm_to_exit, start_systems, stop_systems

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    """Path of the py-spy executable (the venv's, else on PATH); SystemExit when missing."""
    candidate = Path(sys.executable).parent / "py-spy"
    found = str(candidate) if candidate.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's collapsed stacks: [(frames outermost first, sample count)]."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_key(frame: str) -> tuple[str, str]:
    """(function (file), package) of one collapsed frame, without the line number."""
    m = FRAME.match(frame)
    if not m:
        return frame, frame
    file = m.group("file")
    package = file.split("/", 1)[0] if "/" in file else file.rsplit(".", 1)[0]
    return f"{m.group('func')} ({file})", package


PYTHON_PROCESSES = ("daphne", "relay_worker")
OWN_PACKAGES = {"messaging", "auth_pocketbase", "relay_project", "overrides"}
FRAMEWORK_PACKAGES = {"channels", "channels_redis", "asgiref", "daphne", "autobahn", "nats", "redis"}


# "Time by activity": a sample counts for the first activity whose frame is in its stack.
ACTIVITIES = [
    ("channel-layer receive (channels_redis receive loop, redis-py)",
     ("RedisChannelLayer.receive", "RedisSingleShardConnection._do_receiving", "_DrainingShard._do_receiving")),
    ("Channels' per-event DB cleanup (aclose_old_connections: a sync_to_async thread hop)",
     ("aclose_old_connections", "close_old_connections")),
    ("relay: deliver events (Delivery.on_events, on_event, catch_up, deliver; Session.send)",
     ("Delivery.on_events", "Delivery.on_event", "Delivery.catch_up", "Delivery.deliver")),
    ("tutorial: chat_message (send to the socket)", ("ChatConsumer.chat_message",)),
    ("publish path (relay: Commands.publish, Lua script, JetStream fan-out; tutorial: receive, group_send)",
     ("Commands.publish", "start_fan_out", "ChatConsumer.receive", "RedisChannelLayer.group_send")),
    ("relay: cursor and liveness writes", ("WriteBehind.flush", "Registry.advance_many", "Registry.refresh_connections")),
    ("relay: keep-alive (token re-verification, heartbeat)", ("Session.keep_alive",)),
    ("nats-py client (reading, flushing)", ("Client._read_loop", "Client._flusher", "Subscription._wait_for_msgs")),
    ("WebSocket I/O (Twisted, autobahn, daphne)", ("pkg:twisted", "pkg:autobahn", "pkg:daphne")),
    ("redis-py / channels_redis calls (stack cut short by the sampler)", ("pkg:redis", "pkg:channels_redis")),
    ("thread pool (other)", ("Thread._bootstrap",)),
    ("event loop (select, scheduling, task wake-ups)", ("pkg:asyncio", "pkg:selectors")),
]


def activities(stacks: list[tuple[list[str], int]]) -> list[tuple[str, float]]:
    """Share of samples per activity (see ACTIVITIES, in order; ``pkg:NAME`` matches a
    frame of that package inside the event loop's dispatch)."""
    total = sum(c for _, c in stacks)
    counts: collections.Counter = collections.Counter()
    for frames, count in stacks:
        keys = [frame_key(f) for f in frames]
        names = [k.split(" (", 1)[0] for k, _ in keys]
        # Only what runs inside the event loop's dispatch counts for the package rules
        # (the outer frames are runpy, daphne's CLI and Twisted's reactor.run).
        inner = max((i for i, n in enumerate(names) if n in ("Handle._run", "BaseEventLoop._run_once")),
                    default=-1)
        packages = {p for _, p in keys[inner + 1:]}
        if inner >= 0 and names[inner] == "BaseEventLoop._run_once":
            packages.add("asyncio")
        label = "other"
        for activity, markers in ACTIVITIES:
            if any((m[4:] in packages) if m.startswith("pkg:") else any(n == m or n.startswith(m) for n in names)
                   for m in markers):
                label = activity
                break
        counts[label] += count
    return [(name, 100.0 * c / total) for name, c in counts.most_common()] if total else []


def summarise(stacks: list[tuple[list[str], int]], top: int = 20) -> dict:
    """Shares (% of samples) by activity, by package (self), and the `top` functions by
    self and inclusive time.
    """
    total = sum(c for _, c in stacks)
    self_t: collections.Counter = collections.Counter()
    incl_t: collections.Counter = collections.Counter()
    pkg_self: collections.Counter = collections.Counter()
    package_of: dict[str, str] = {}
    for frames, count in stacks:
        keys = [frame_key(f) for f in frames]
        if keys:
            self_t[keys[-1][0]] += count
            pkg_self[keys[-1][1]] += count
        for name, package in set(keys):
            incl_t[name] += count
            package_of[name] = package
    pct = lambda c: 100.0 * c / total if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "activities": activities(stacks),
        "self": [(name, pct(c)) for name, c in self_t.most_common(top)],
        "inclusive": [(name, pct(c)) for name, c in incl_t.most_common(top + 15)],
        "packages": [(name, pct(c)) for name, c in pkg_self.most_common(15)],
        # the project's own code, and the Channels layers under it, by inclusive time
        "own": [(name, pct(c)) for name, c in incl_t.most_common()
                if package_of.get(name) in OWN_PACKAGES][:15],
        "framework": [(name, pct(c)) for name, c in incl_t.most_common()
                      if package_of.get(name) in FRAMEWORK_PACKAGES][:15],
    }


def markdown(run_id: str, system: str, scenario: str, record: dict, summaries: dict[str, dict], rate: int) -> str:
    """The profile report (Markdown): the run's figures, then each process's summaries."""
    srv = record.get("server") or {}
    lines = [f"# Profile {run_id}: {system} under `{scenario}`", "",
             f"py-spy record --rate {rate} --nonblocking on each process during the measured phase "
             f"({srv.get('measured_s', 0):.1f} s). Shares are of busy samples (idle threads are not sampled).",
             "",
             f"Run: {record.get('deliveries')}/{record.get('expected_deliveries')} delivered, "
             f"{record.get('deliveries_per_s') or 0:,.0f}/s, CPU {srv.get('cpu_us_per_delivery') or 0:,.0f} µs per "
             f"delivery; server CPU seconds per process: "
             + ", ".join(f"{k} {v:.1f}" for k, v in (srv.get("cpu_s_per_process") or {}).items())
             + (f"; relay counters: {record.get('system_counters')}" if record.get("system_counters") else ""),
             ""]
    for proc, summ in summaries.items():
        what = "GIL holder only" if proc.endswith("-gil") else "all non-idle threads"
        lines += [f"## {proc} ({summ['samples']} samples, {what})", "",
                  "Time by activity (a sample counts for the first activity found in its stack):", "",
                  "| activity | % |", "|---|---:|"]
        lines += [f"| {n} | {p:.1f} |" for n, p in summ["activities"]]
        lines += ["", "Time by package (self):", "",
                  "| package | % |", "|---|---:|"]
        lines += [f"| {n} | {p:.1f} |" for n, p in summ["packages"]]
        lines += ["", "Top functions by self time:", "", "| function | self % |", "|---|---:|"]
        lines += [f"| `{n}` | {p:.1f} |" for n, p in summ["self"]]
        lines += ["", "Top functions by inclusive time:", "", "| function | inclusive % |", "|---|---:|"]
        lines += [f"| `{n}` | {p:.1f} |" for n, p in summ["inclusive"]]
        lines += ["", "The relay's own functions (messaging/, auth_pocketbase/, relay_project/), inclusive:", "",
                  "| function | inclusive % |", "|---|---:|"]
        lines += [f"| `{n}` | {p:.1f} |" for n, p in summ["own"]]
        lines += ["", "Channels, channels_redis, asgiref, daphne, autobahn, nats-py, redis-py functions, inclusive:",
                  "", "| function | inclusive % |", "|---|---:|"]
        lines += [f"| `{n}` | {p:.1f} |" for n, p in summ["framework"]]
        lines.append("")
    return "\n".join(lines)


def profile(args) -> int:
    """`python -m bench profile`: one run with py-spy attached to the Python servers during
    the measured phase; writes the report and the raw stacks; returns the exit code.
    """
    sigterm_to_exit()
    spy = py_spy()
    table = config.sizes(args.preset)
    for assignment in args.set or []:
        config.apply_override(table, assignment)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    base = Path(tempfile.mkdtemp(prefix="relay-bench-profile-"))
    workdir = base / "runs"
    workdir.mkdir()
    systems = {}
    spies: dict[str, subprocess.Popen] = {}
    raw: dict[str, Path] = {}
    try:
        systems = start_systems([args.system], base, table)
        target = systems[args.system]
        pids = {k: v for k, v in target.processes().items() if k in PYTHON_PROCESSES}

        def on_phase(name: str) -> None:
            if name == "measure_start":
                for proc, pid in pids.items():
                    for variant, extra in (("", []), ("-gil", ["--gil"])):
                        key = f"{proc}{variant}"
                        raw[key] = out / f"profile-{run_id}-{key}.txt"
                        spies[key] = subprocess.Popen(
                            [spy, "record", "--pid", str(pid), "--rate", str(args.rate), "--format", "raw",
                             "--nonblocking", *extra, "-o", str(raw[key])],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / f"py-spy-{key}.log", "w"))
                time.sleep(0.5)  # let py-spy attach before the load starts
            elif name == "measure_end":
                for proc in spies.values():
                    proc.send_signal(signal.SIGINT)
                for proc in spies.values():
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()

        record = run_one(target, args.scenario, 0, table, workdir, on_phase=on_phase)
    finally:
        for proc in spies.values():
            if proc.poll() is None:
                proc.kill()
        stop_systems(systems)
    if not record.get("ok"):
        say(f"[bench] the profiled run failed: {record.get('error')}\n{record.get('log_tail', '')}")
    summaries = {proc: summarise(read_stacks(path)) for proc, path in raw.items() if path.exists()}
    text = markdown(run_id, args.system, args.scenario, record, summaries, args.rate)
    md = out / f"profile-{run_id}.md"
    md.write_text(text)
    print(text)
    say(f"[bench] wrote {md} and the raw stacks {', '.join(str(p) for p in raw.values())}")
    shutil.rmtree(base, ignore_errors=True)
    return 0 if record.get("ok") and summaries else 1
