"""The ``relay`` fixture runs the real relay: daphne answers /healthz, workers
can be killed and replaced, daphne can be restarted on its port."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_relay_serves_healthz(relay):
    resp = requests.get(relay.http_url + "healthz", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert relay.ws_url == f"ws://127.0.0.1:{relay.web.port}/ws/"
    assert len(relay.workers) == 2 and all(w.running() for w in relay.workers)
    assert relay.env["RELAY_PUBLISH_RATE"] == "0"


def test_a_worker_can_be_killed_and_replaced(relay):
    victim = relay.workers[0]
    victim.kill()
    assert not victim.running()
    fresh = relay.start_worker()
    assert fresh.running() and fresh in relay.workers and fresh.pid != victim.pid


def test_web_restarts_on_the_same_port(relay):
    port, pid = relay.web.port, relay.web.pid
    relay.restart_web()
    assert relay.web.port == port and relay.web.pid != pid
    assert requests.get(relay.http_url + "healthz", timeout=5).status_code == 200
