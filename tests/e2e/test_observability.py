"""/metrics moves when messages flow; logs are JSON lines with context and no tokens."""
import asyncio
import json
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .wsclient import Client

pytestmark = pytest.mark.e2e


def scrape(relay) -> dict:
    text = requests.get(f"{relay.http_url}metrics", timeout=10).text
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if not s.labels}


def auth_failures(relay) -> dict[str, float]:
    """relay_auth_failures_total by reason, from the web process's /metrics."""
    text = requests.get(f"{relay.http_url}metrics", timeout=10).text
    return {s.labels["reason"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "relay_auth_failures_total"}


def relay_families(url: str) -> set[str]:
    """The relay's own metric families (relay_*) a /metrics endpoint exposes, without
    the `<counter>_created` gauges prometheus-client adds to each counter and histogram."""
    text = requests.get(url, timeout=10).text
    return {family.name for family in text_string_to_metric_families(text)
            if family.name.startswith("relay_") and not family.name.endswith("_created")}


WEB_FAMILIES = {"relay_connections", "relay_subscriptions", "relay_messages_published", "relay_messages_delivered",
                "relay_publish_to_deliver_seconds", "relay_gap_fills", "relay_auth_failures", "relay_slow_consumer_closes"}
WORKER_FAMILIES = {"relay_worker_events", "relay_worker_redeliveries"}


async def test_metrics_move_when_messages_flow(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"met-{uuid.uuid4().hex[:8]}"
    before = scrape(relay)
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    for i in range(3):
        await b.request({"type": "publish", "channel": channel, "text": f"m{i}"})
    await a.messages(3)
    after = scrape(relay)
    assert after["relay_messages_published_total"] - before["relay_messages_published_total"] == 3
    assert after["relay_messages_delivered_total"] - before["relay_messages_delivered_total"] == 3
    assert after["relay_publish_to_deliver_seconds_count"] - before["relay_publish_to_deliver_seconds_count"] == 3
    assert after["relay_connections"] - before["relay_connections"] == 2
    assert after["relay_subscriptions"] - before["relay_subscriptions"] == 1
    await a.close(), await b.close()
    refused = auth_failures(relay)["unauthorized"]
    bad = await Client.open(relay.ws_url, "not-a-token", expect_welcome=False)
    await bad.closed_with()
    assert auth_failures(relay)["unauthorized"] - refused == 1


async def test_logs_are_json_lines_with_context_and_never_a_token(relay, pb_user):
    alice = pb_user("Alice")
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": "logs-check"})
    await a.close()
    for _ in range(100):  # the close is logged once daphne handled it
        lines = [json.loads(line) for line in relay.web.log_path.read_text().splitlines() if line.startswith("{")]
        if any(entry.get("message") == "connection closed" and entry.get("user") == alice.id for entry in lines):
            break
        await asyncio.sleep(0.05)
    mine = [entry for entry in lines if entry.get("user") == alice.id]
    assert {"connection opened", "subscribed", "connection closed"} <= {entry["message"] for entry in mine}
    assert any(entry.get("channel") == "logs-check" for entry in mine)
    assert alice.token not in relay.web.log_path.read_text()


def test_http_auth_failures_are_counted_with_the_websocket_reasons(relay, pb_user, pocketbase_server):
    """401s of the HTTP API and the login form count as reason "unauthorized", 503s for
    PocketBase being unavailable as "unavailable", as the WebSocket handshake's do."""
    bob = pb_user("Bob")
    api = f"{relay.http_url}api/channels/"
    page = requests.Session()
    page.get(f"{relay.http_url}login/", timeout=10)
    before = auth_failures(relay)
    refused = [
        requests.get(api, timeout=10),
        requests.get(api, headers={"Authorization": "Bearer not-a-token"}, timeout=10),
        requests.post(f"{api}c1/messages", json={"text": "x"}, headers={"Authorization": f"Bearer {bob.token}x"},
                      timeout=10),
        page.post(f"{relay.http_url}login/", {"email": bob.email, "password": "wrong-password-xyz",
                                              "csrfmiddlewaretoken": page.cookies["csrftoken"]}, timeout=10),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401, 400]
    pocketbase_server.stop()
    try:
        unverifiable = requests.get(api, headers=bob.headers, timeout=30)  # a token this relay has not cached
        assert (unverifiable.status_code, unverifiable.json()["error"]["code"]) == (503, "unavailable")
    finally:
        pocketbase_server.start()
    after = auth_failures(relay)
    assert after.get("unauthorized", 0) - before.get("unauthorized", 0) == 4
    assert after.get("unavailable", 0) - before.get("unavailable", 0) == 1


def test_each_process_exposes_only_the_metrics_it_changes(relay):
    """daphne's /metrics has the connection-side metrics and no worker counters; a
    worker's --metrics-port has the worker counters and none of daphne's."""
    worker = relay.start_worker(metrics_port=0)
    try:
        assert relay_families(f"{relay.http_url}metrics") == WEB_FAMILIES
        assert relay_families(worker.metrics_url) == WORKER_FAMILIES
    finally:
        worker.stop()
