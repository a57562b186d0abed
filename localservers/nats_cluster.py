"""A real 3-node NATS cluster with JetStream (clustered, Raft) on loopback, for tests
of the relay scaled out (several daphnes and workers, an R3 ``EVENTS`` stream)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from pathlib import Path

import requests

from ._server import ServerStartError
from ._util import free_port
from .nats_server import NatsServer

__all__ = ["NatsCluster", "NatsClusterNode"]


def _get_json(url: str) -> dict:
    return requests.get(url, timeout=2).json()


class NatsClusterNode(NatsServer):
    """One node of a :class:`NatsCluster`: ``nats-server -js`` with a cluster listener on
    ``cluster_port``, routes to the other nodes, cluster name and server name ``name``.

    Like every server object it can be ``stop()``-ed, ``kill()``-ed (SIGKILL) and
    started again on the same client, monitoring and cluster ports with the same data
    dir. ``start()`` waits until the node answers ``/healthz`` (clustered JetStream:
    it is in contact with a meta leader and current with it, and the streams and
    consumers placed on it have caught up), so a restarted node is really back.
    """

    name = "nats-node"

    def __init__(self, data_dir, server_name: str, cluster_port: int, routes: list[str],
                 cluster_name: str = "relay", port=None, host="127.0.0.1", log_path=None,
                 timeout=60.0, http_port: int | None = None, args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port=port, host=host, log_path=log_path, timeout=timeout,
                         http_port=http_port, args=args)
        if not self.http_port:
            raise ValueError("a cluster node needs its monitoring port (http_port)")
        self.server_name = server_name
        self.cluster_name = cluster_name
        self.cluster_port = cluster_port
        self.routes = list(routes)
        # False only while the whole cluster is launched: a lone node never becomes
        # healthy before a quorum is up, so then start() only waits for JetStream.
        self.wait_for_cluster = True

    @property
    def cluster_url(self) -> str:
        """``nats://127.0.0.1:CLUSTER_PORT``: where the other nodes route to."""
        return f"nats://{self.host}:{self.cluster_port}"

    def command(self) -> list[str]:
        """nats-server's argument list for this node: JetStream, its store, client and
        cluster ports, and routes to the other nodes.
        """
        cluster = ["-n", self.server_name, "--cluster_name", self.cluster_name,
                   "--cluster", self.cluster_url, "--routes", ",".join(self.routes)]
        # NatsServer.command() appends self.args last: keep any caller's extras there.
        base = super().command()
        extra = len(self.args)
        return base[:len(base) - extra] + cluster + base[len(base) - extra:]

    def ready(self) -> bool:
        """``/healthz`` ok (JetStream current with the meta leader); while the cluster is
        being launched only ``/healthz?js-enabled-only=true``."""
        query = "" if self.wait_for_cluster else "?js-enabled-only=true"
        return requests.get(f"{self.monitor_url}/healthz{query}", timeout=2).status_code == 200

    def healthy(self) -> bool:
        """True when the node runs and its full ``/healthz`` answers ok (never raises)."""
        if not self.running():
            return False
        try:
            return requests.get(f"{self.monitor_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def meta_leader(self) -> str | None:
        """The server name of the JetStream meta leader this node knows, or None."""
        try:
            return (_get_json(f"{self.monitor_url}/jsz").get("meta_cluster") or {}).get("leader") or None
        except (requests.RequestException, ValueError):
            return None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running() else "stopped"
        return f"<NatsClusterNode {self.server_name} {self.url} {state}>"


class NatsCluster:
    """Three (``size``) ``nats-server`` nodes with JetStream, routed to each other on
    loopback, cluster name ``cluster_name``, server names ``node1``..``nodeN``, each
    with its data in ``base_dir/nodeN`` (log ``base_dir/nodeN.log``).

    - ``url``: the nodes' client URLs, comma-separated (the relay's ``NATS_URL`` for a
      cluster; ``urls`` is the same as a list);
    - ``nodes``: the :class:`NatsClusterNode` objects; each can be killed (SIGKILL),
      stopped and started again on the same ports and data dir;
    - ``start()`` launches every node, then waits until JetStream is usable: every
      node healthy, one meta leader known to all, and a stream with ``size`` replicas
      can be placed (a probe stream is created and deleted);
    - ``stop()``, ``running()``, ``healthy()``, ``wait_healthy()``, ``node(name)``,
      ``meta_leader()``, ``stream_leader(name)``, context manager.
    """

    def __init__(self, base_dir: str | Path, size: int = 3, cluster_name: str = "relay",
                 host: str = "127.0.0.1", timeout: float = 90.0) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_name = cluster_name
        self.host = host
        self.timeout = timeout
        cluster_ports = [free_port(host) for _ in range(size)]
        self.nodes: list[NatsClusterNode] = []
        for i, cport in enumerate(cluster_ports):
            routes = [f"nats://{host}:{p}" for j, p in enumerate(cluster_ports) if j != i]
            self.nodes.append(NatsClusterNode(
                self.base_dir / f"node{i + 1}", server_name=f"node{i + 1}", cluster_port=cport,
                routes=routes, cluster_name=cluster_name, host=host, timeout=timeout))

    # -- properties ---------------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        """``nats://127.0.0.1:PORT`` of each node."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """The nodes' URLs comma-separated (``NATS_URL`` for the relay)."""
        return ",".join(self.urls)

    def node(self, server_name: str) -> NatsClusterNode:
        """The node whose server name is ``server_name`` (``node1``...)."""
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    # -- lifecycle ----------------------------------------------------------------------
    def running(self) -> bool:
        """True while every node's process is alive."""
        return all(node.running() for node in self.nodes)

    def start(self) -> "NatsCluster":
        """Start every node that is not running and wait until the cluster is usable
        (see the class); returns self. Raises :class:`ServerStartError` with the nodes'
        log tails when it is not within ``timeout`` seconds."""
        for node in self.nodes:
            node.wait_for_cluster = False
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        finally:
            for node in self.nodes:
                node.wait_for_cluster = True
        try:
            self.wait_healthy(self.timeout)
            self._probe_placement(time.monotonic() + self.timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node (SIGTERM, waits)."""
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def healthy(self) -> bool:
        """True when every node runs, answers ``/healthz`` ok and knows the same meta leader."""
        if not all(node.healthy() for node in self.nodes):
            return False
        leaders = {node.meta_leader() for node in self.nodes}
        return len(leaders) == 1 and None not in leaders

    def wait_healthy(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll until :meth:`healthy` (every node running); raises ServerStartError
        with the nodes' log tails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise ServerStartError(f"NATS cluster not healthy within {timeout:.0f}s\n{self.log_tails()}")
            time.sleep(interval)

    def meta_leader(self) -> str | None:
        """Server name of the JetStream meta leader (asked to the running nodes)."""
        for node in self.nodes:
            if node.running():
                leader = node.meta_leader()
                if leader:
                    return leader
        return None

    def stream_leader(self, stream: str, account: str = "$G") -> str | None:
        """Server name of the node leading ``stream`` (from ``/jsz``), or None."""
        for node in self.nodes:
            if not node.running():
                continue
            try:
                jsz = _get_json(f"{node.monitor_url}/jsz?accounts=true&streams=true")
            except (requests.RequestException, ValueError):
                continue
            for acc in jsz.get("account_details") or []:
                if acc.get("name") != account:
                    continue
                for detail in acc.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        leader = (detail.get("cluster") or {}).get("leader")
                        if leader:
                            return leader
        return None

    def log_tails(self, lines: int = 20) -> str:
        """The last lines of each node's log, for failure reports."""
        return "\n".join(f"--- {n.server_name} ({n.log_path}) ---\n{n.log_tail(lines)}" for n in self.nodes)

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<NatsCluster {self.cluster_name} {self.url} {self.nodes}>"

    # -- internals -----------------------------------------------------------------------
    def _probe_placement(self, deadline: float) -> None:
        """Create and delete a stream with one replica per node until that works: right
        after the meta leader is elected it may not know every peer yet ("no suitable
        peers for placement"), and the relay's first ``ensure_stream`` must not see that."""
        import nats  # noqa: PLC0415 - the relay's own dependency, only needed here
        from nats.js import api  # noqa: PLC0415

        name = f"PROBE_{uuid.uuid4().hex[:8]}"

        async def probe() -> None:
            nc = await nats.connect(self.urls, connect_timeout=2, max_reconnect_attempts=-1,
                                    reconnect_time_wait=0.2, allow_reconnect=True)
            try:
                js = nc.jetstream(timeout=5)
                last: Exception | None = None
                while time.monotonic() < deadline:
                    try:
                        await js.add_stream(api.StreamConfig(
                            name=name, subjects=[f"_probe.{name}"], num_replicas=len(self.nodes),
                            storage=api.StorageType.MEMORY))
                        await js.delete_stream(name)
                        return
                    except Exception as exc:  # noqa: BLE001 - placement not possible yet
                        last = exc
                        await asyncio.sleep(0.2)
                raise ServerStartError(f"NATS cluster cannot place a {len(self.nodes)}-replica stream: "
                                       f"{last!r}\n{self.log_tails()}")
            finally:
                await nc.close()

        # Own thread and event loop: callers may be inside a running loop themselves.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
