"""Real Redis, NATS (JetStream) and PocketBase servers as child processes.

Shared by the test fixtures (tests/conftest.py) and the local runner
(scripts/run, through ``python -m localservers``). Each server object has
``start()``, ``stop()``, ``kill()`` (SIGKILL), ``restart()`` (same port, same
data), ``running()``, ``url``, ``port``, ``pid`` and ``log_path``.
:class:`NatsCluster` runs three such NATS nodes as one JetStream cluster.
"""

from ._server import AlreadyRunning, ManagedServer, ServerStartError
from ._util import BinaryNotFound, choose_port, free_port, port_is_free, wait_until
from .nats_cluster import NatsCluster, NatsClusterNode
from .nats_server import NatsServer, nats_binary
from .pocketbase_api import PocketBase, PocketBaseError
from .pocketbase_server import PocketBaseServer, pocketbase_binary
from .redis_server import RedisServer, redis_binary

__all__ = [
    "AlreadyRunning", "BinaryNotFound", "ManagedServer", "NatsCluster", "NatsClusterNode", "NatsServer", "PocketBase",
    "PocketBaseError", "PocketBaseServer", "RedisServer", "ServerStartError", "choose_port",
    "free_port", "nats_binary", "pocketbase_binary", "port_is_free", "redis_binary", "wait_until",
]
