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
    bad = await Client.open(relay.ws_url, "not-a-token", expect_welcome=False)
    await bad.closed_with()
    text = requests.get(f"{relay.http_url}metrics", timeout=10).text
    assert 'relay_auth_failures_total{reason="unauthorized"}' in text


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
