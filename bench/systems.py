"""The server side of each benchmarked system: real processes on free loopback ports.

Each system has ``start(base_dir)``, ``stop()``, ``processes()`` (name -> pid of every
server process whose CPU and memory count for it) and ``client_config()`` (what the
load generator needs to connect: URLs, tokens). Servers come from ``localservers``
(the project's own helpers), so no system ever touches the machine's Redis (6379),
NATS (4222) or PocketBase (8090).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from localservers import NatsServer, PocketBase, PocketBaseServer, RedisServer, free_port
from localservers._util import tail
from localservers.relay import Relay

REPO_ROOT = Path(__file__).resolve().parent.parent
TUTORIAL_DIR = Path(__file__).resolve().parent / "channels_tutorial"
USER_PASSWORD_BYTES = 12


class StartError(RuntimeError):
    """A system could not be started (the message carries the log tail)."""


class Process:
    """A child process logging to a file, ready once its TCP port accepts."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 port: int) -> None:
        self.name, self.cmd, self.cwd, self.env, self.log_path, self.port = name, cmd, cwd, env, log_path, port
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """The child's PID, None before start()."""
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 90.0) -> "Process":
        """Start the command (output to log_path) and wait until its port accepts; raises
        StartError when it exits or is not listening within `timeout` seconds.
        """
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise StartError(f"{self.name} not listening on {self.port} after {timeout:.0f}s:\n{tail(self.log_path)}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; no-op when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def create_users(pb_url: str, count: int, prefix: str = "bench") -> list[dict]:
    """Create ``count`` PocketBase users (8 threads) and log each in; returns
    ``[{"id", "email", "token"}, ...]`` in creation order."""
    local = threading.local()

    def make(i: int) -> dict:
        if not hasattr(local, "api"):
            local.api = PocketBase(pb_url, timeout=30)
        email = f"{prefix}{i}-{secrets.token_hex(4)}@example.com"
        password = secrets.token_urlsafe(USER_PASSWORD_BYTES)
        for attempt in range(5):
            try:
                local.api.create_user(email, password, f"{prefix}{i}")
                token, record = local.api.login(email, password)
                return {"id": record["id"], "email": email, "token": token}
            except Exception:  # noqa: BLE001 - a busy machine may time out; retry a few times
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(make, range(count)))


class System:
    """Base class; see the module docstring."""

    name = "system"

    def __init__(self) -> None:
        self._stoppers: list = []

    def start(self, base: Path, users: int) -> "System":
        """Start the system's servers under `base` (data dirs, logs) with `users` PocketBase
        users where the system needs them; returns self; raises StartError.
        """
        raise NotImplementedError

    def processes(self) -> dict[str, int]:
        """{name: PID} of every server process whose CPU and memory are measured."""
        raise NotImplementedError

    def client_config(self) -> dict:
        """What the load generator needs to reach the system (URLs, tokens), JSON-able."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything this system started, newest first (never raises)."""
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"warning: stopping part of {self.name}: {exc!r}", file=sys.stderr)

    def _started(self, server):
        self._stoppers.append(server.stop)
        return server

    def logs(self) -> str:
        """The tail of the servers' logs, for a failed run's report."""
        return ""

    def counters(self) -> dict:
        """System-specific counters read before and after a measured phase (the report
        keeps their differences); empty unless a system has some."""
        return {}

    def after_run(self, record: dict) -> str | None:
        """Clean up after a run that left work behind (returns what was done, or None)."""
        return None

    def redis_commandstats(self) -> dict:
        """``{command: (calls, usec)}`` of the system's Redis (INFO commandstats), or {}."""
        server = getattr(self, "redis", None)
        if server is None:
            return {}
        import redis

        try:
            client = redis.Redis(host=server.host, port=server.port, socket_timeout=10)
            stats = client.info("commandstats")
            client.close()
        except redis.RedisError:
            return {}
        return {name.removeprefix("cmdstat_"): (v.get("calls", 0), v.get("usec", 0)) for name, v in stats.items()}

    def refresh(self) -> None:
        """Restart the processes that hold client connections (same ports, same data),
        so the idle scenario measures memory per connection on fresh processes and the
        next round does not inherit the memory of 2,000 connections."""


def prometheus_values(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum of the samples of each metric in ``names`` in a Prometheus text exposition."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        metric, _, rest = line.partition(" ")
        base = metric.split("{", 1)[0]
        if base in names:
            try:
                values[base] = values.get(base, 0.0) + float(rest.split()[0])
            except (ValueError, IndexError):
                pass
    return values


RELAY_COUNTERS = ("relay_messages_published_total", "relay_messages_delivered_total", "relay_gap_fills_total",
                  "relay_worker_events_total", "relay_worker_redeliveries_total")


def _purge_stream(nats_url: str, stream: str) -> None:
    import asyncio

    import nats

    async def purge() -> None:
        nc = await nats.connect(nats_url, connect_timeout=10, allow_reconnect=False)
        try:
            await nc.jetstream().purge_stream(stream)
        finally:
            await nc.close()

    asyncio.run(purge())


class RelaySystem(System):
    """The project: Redis, NATS (JetStream), PocketBase, one daphne, one relay_worker."""

    name = "relay"

    def start(self, base: Path, users: int) -> "RelaySystem":
        self.redis = self._started(RedisServer(base / "redis").start())
        self.nats = self._started(NatsServer(base / "nats").start())
        self.pocketbase = self._started(PocketBaseServer(base / "pocketbase").start())
        # Users: one per subscriber, plus a publisher and a replay subscriber of their own.
        self.users = create_users(self.pocketbase.url, users + 2)
        env = {
            "REDIS_URL": self.redis.url,
            "NATS_URL": self.nats.url,
            "POCKETBASE_URL": self.pocketbase.url,
            "RELAY_PUBLISH_RATE": "0",
            "RELAY_MAX_CONNECTIONS_PER_USER": "100000",
            "DJANGO_DEBUG": "false",
            "RELAY_LOG_LEVEL": "WARNING",
            # The worker's Prometheus metrics (events handled, JetStream redeliveries).
            "RELAY_WORKER_METRICS_PORT": str(free_port()),
        }
        self.worker_metrics_url = f"http://127.0.0.1:{env['RELAY_WORKER_METRICS_PORT']}/metrics"
        self.relay = Relay(base / "relay", env, workers=1)
        self._stoppers.append(self._kill_relay)
        self.relay.start()
        return self

    def refresh(self) -> None:
        self.relay.restart_web(0)

    def _kill_relay(self) -> None:
        """Teardown: SIGKILL daphne and the workers (a graceful stop would first drain
        whatever backlog a run left, for minutes)."""
        for proc in [*self.relay.workers, *self.relay.webs]:
            if proc.running():
                proc.kill()

    def after_run(self, record: dict) -> str | None:
        """A run cut short by its deadline leaves events in JetStream and in the worker's
        buffer; left alone, the worker would keep a core busy during the next systems'
        runs. Purge the EVENTS stream and replace the worker (its connections are
        gone anyway: the messages are in the history)."""
        counters = self.counters()
        backlog = counters.get("jetstream_num_pending", 0) + counters.get("jetstream_num_ack_pending", 0)
        if not backlog:
            return None
        try:
            _purge_stream(self.nats.url, "EVENTS")
        except Exception as exc:  # noqa: BLE001
            print(f"warning: purging EVENTS: {exc!r}", file=sys.stderr)
        old = self.relay.running_workers
        for worker in old:
            worker.kill()
        self.relay.workers = [w for w in self.relay.workers if w not in old]
        self.relay.start_worker()
        return f"purged a backlog of {backlog} events and restarted the relay_worker"

    def processes(self) -> dict[str, int]:
        return {"daphne": self.relay.web.pid, "relay_worker": self.relay.workers[0].pid,
                "redis": self.redis.pid, "nats": self.nats.pid, "pocketbase": self.pocketbase.pid}

    def client_config(self) -> dict:
        return {"ws_url": self.relay.ws_url, "origin": self.relay.http_url.rstrip("/"),
                "tokens": [u["token"] for u in self.users[:-2]],
                "publisher_token": self.users[-2]["token"], "replay_token": self.users[-1]["token"]}

    def logs(self) -> str:
        return self.relay.logs() if hasattr(self, "relay") else ""

    def counters(self) -> dict:
        """The relay's own counters (daphne's /metrics, the worker's metrics port) and the
        JetStream consumer's state (NATS monitoring): how much work a run caused."""
        out: dict = {}
        for url in (self.relay.http_url + "metrics", self.worker_metrics_url):
            try:
                for key, value in prometheus_values(requests.get(url, timeout=10).text, RELAY_COUNTERS).items():
                    out[key] = out.get(key, 0.0) + value
            except requests.RequestException:
                pass
        try:
            jsz = requests.get(f"{self.nats.monitor_url}/jsz?consumers=true", timeout=10).json()
            for account in jsz.get("account_details", []):
                for stream in account.get("stream_detail", []):
                    for consumer in stream.get("consumer_detail", []) or []:
                        out["jetstream_num_redelivered"] = consumer.get("num_redelivered", 0)
                        out["jetstream_num_ack_pending"] = consumer.get("num_ack_pending", 0)
                        out["jetstream_num_pending"] = consumer.get("num_pending", 0)
        except (requests.RequestException, ValueError):
            pass
        return out


class TutorialSystem(System):
    """The Channels tutorial chat (bench/channels_tutorial) on daphne, with its own Redis."""

    name = "channels_tutorial"

    def start(self, base: Path, users: int) -> "TutorialSystem":
        # Redis as a tutorial reader runs it: no append-only file, no snapshots
        # (snapshots would fork in the middle of a measurement).
        self.redis = self._started(RedisServer(base / "redis", args=("--appendonly", "no")).start())
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial_project.settings",
               "TUTORIAL_REDIS_URL": self.redis.url, "TUTORIAL_DB": str(base / "db.sqlite3"),
               "TUTORIAL_SECRET_KEY": secrets.token_urlsafe(40), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
               "tutorial_project.asgi:application"]
        self.daphne = Process("tutorial daphne", cmd, TUTORIAL_DIR, env, base / "daphne.log", port)
        self._stoppers.append(self.daphne.stop)
        self.daphne.start()
        self.port = port
        return self

    def processes(self) -> dict[str, int]:
        return {"daphne": self.daphne.pid, "redis": self.redis.pid}

    def refresh(self) -> None:
        self.daphne.stop()
        self.daphne.start()

    def client_config(self) -> dict:
        return {"ws_base": f"ws://127.0.0.1:{self.port}/ws/chat/", "origin": f"http://127.0.0.1:{self.port}"}

    def logs(self) -> str:
        return tail(self.daphne.log_path) if hasattr(self, "daphne") else ""


class PocketBaseRealtimeSystem(System):
    """PocketBase's own realtime: a ``messages`` collection with open rules, SSE subscribers."""

    name = "pocketbase_realtime"

    def start(self, base: Path, users: int) -> "PocketBaseRealtimeSystem":
        self.pocketbase = self._started(PocketBaseServer(base / "pocketbase").start())
        token = self.pocketbase.api.superuser_token()
        collection = {
            "name": "messages", "type": "base",
            "listRule": "", "viewRule": "", "createRule": "",  # "" = anyone, no auth
            "fields": [{"name": "room", "type": "text"}, {"name": "text", "type": "text"},
                       {"name": "seq", "type": "number"}],
            "indexes": ["CREATE INDEX idx_messages_room_seq ON messages (room, seq)"],
        }
        resp = requests.post(f"{self.pocketbase.url}/api/collections", json=collection,
                             headers={"Authorization": token}, timeout=30)
        if resp.status_code != 200:
            raise StartError(f"creating the messages collection: HTTP {resp.status_code}: {resp.text}")
        return self

    def processes(self) -> dict[str, int]:
        return {"pocketbase": self.pocketbase.pid}

    def refresh(self) -> None:
        self.pocketbase.restart()

    def client_config(self) -> dict:
        return {"url": self.pocketbase.url}


class NatsRawSystem(System):
    """nats-server; core publish/subscribe on plain subjects (no JetStream in the path)."""

    name = "nats_raw"

    def start(self, base: Path, users: int) -> "NatsRawSystem":
        self.nats = self._started(NatsServer(base / "nats").start())
        return self

    def processes(self) -> dict[str, int]:
        return {"nats": self.nats.pid}

    def refresh(self) -> None:
        self.nats.restart()

    def client_config(self) -> dict:
        return {"url": self.nats.url}


SYSTEM_CLASSES = {cls.name: cls for cls in (RelaySystem, TutorialSystem, PocketBaseRealtimeSystem, NatsRawSystem)}
