"""/readyz proves a round trip to each server within its bound: a server stopped with
SIGSTOP keeps its TCP connections open and accepts new ones, but answers nothing; the
probe then answers 503 naming it, quickly, and 200 again once the server resumes.

The servers here are this module's own, so a stopped one never affects other tests."""
import os
import signal

import pytest
import requests

from localservers import NatsServer, PocketBaseServer, RedisServer, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBE_TIMEOUT_S = 5  # the probe timeout docs/deploy.md gives (the checks answer within 2 s)
RECOVERY_S = 30  # PROTOCOL.md: the relay recovers within 30 seconds of a backend's return


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Redis, NATS and PocketBase of this module's own, by /readyz check name."""
    base = tmp_path_factory.mktemp("readiness")
    servers = {"redis": RedisServer(base / "redis"), "nats": NatsServer(base / "nats"),
               "pocketbase": PocketBaseServer(base / "pocketbase")}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def ready_relay(relay_factory, own):
    """A daphne (no workers) on this module's own servers."""
    relay = relay_factory(env={"REDIS_URL": own["redis"].url, "NATS_URL": own["nats"].url,
                               "POCKETBASE_URL": own["pocketbase"].url}, workers=0)
    yield relay
    relay.stop()


def readyz(relay) -> requests.Response:
    return requests.get(f"{relay.http_url}readyz", timeout=PROBE_TIMEOUT_S)


def until_ready(relay) -> None:
    wait_until(lambda: readyz(relay).status_code == 200, RECOVERY_S, interval=0.5, what="/readyz 200")


@pytest.mark.parametrize("name", ["nats", "redis", "pocketbase"])
def test_readyz_names_a_stopped_server_within_its_bound_then_recovers(ready_relay, own, name):
    until_ready(ready_relay)  # the relay's connections to every server are open
    server = own[name]
    os.kill(server.pid, signal.SIGSTOP)
    try:
        stopped = readyz(ready_relay)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    body = stopped.json()
    assert stopped.status_code == 503 and body["status"] == "unavailable"
    assert body["checks"][name] == "no answer within 2 s"
    assert {check: reason for check, reason in body["checks"].items() if check != name} == {
        check: "ok" for check in own if check != name}
    until_ready(ready_relay)
