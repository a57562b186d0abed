"""The relay: Redis, NATS with JetStream, PocketBase, one daphne and one relay_worker
(``localservers.relay.Relay``), one PocketBase user per subscriber; its counters from
its metrics and NATS monitoring."""
from __future__ import annotations

import sys
from pathlib import Path

import requests

from localservers import NatsServer, PocketBaseServer, RedisServer, free_port
from localservers.relay import Relay

from .base import System
from .pocketbase_users import create_users


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


# The relay's Prometheus counters kept per run (their differences over the measured phase).
RELAY_COUNTERS = ("relay_messages_published_total", "relay_messages_delivered_total", "relay_gap_fills_total",
                  "relay_worker_events_total", "relay_worker_redeliveries_total")


def _purge_stream(nats_url: str, stream: str) -> None:
    """Purge the JetStream ``stream`` of the NATS server at ``nats_url``."""
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
        """Redis, NATS, PocketBase (with ``users`` + 2 users), daphne and the worker under
        ``base``; raises StartError."""
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
        """Restart daphne (the process holding the connections; same port)."""
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
        """The PIDs of daphne, relay_worker, Redis, NATS and PocketBase."""
        return {"daphne": self.relay.web.pid, "relay_worker": self.relay.workers[0].pid,
                "redis": self.redis.pid, "nats": self.nats.pid, "pocketbase": self.pocketbase.pid}

    def client_config(self) -> dict:
        """``ws_url``, ``origin``, the subscribers' ``tokens`` and the publisher's and the
        replay subscriber's tokens (PocketBase tokens of users of their own)."""
        return {"ws_url": self.relay.ws_url, "origin": self.relay.http_url.rstrip("/"),
                "tokens": [u["token"] for u in self.users[:-2]],
                "publisher_token": self.users[-2]["token"], "replay_token": self.users[-1]["token"]}

    def logs(self) -> str:
        """The tail of daphne's and the worker's logs."""
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
