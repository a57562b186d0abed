"""The HTTP API of PROTOCOL.md against the running relay."""
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from localservers._util import wait_until

from .wsclient import Client

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def url(relay, channel):
    return f"{relay.http_url}api/channels/{channel}/messages"


@pytest.fixture
def channel():
    return f"http-{uuid.uuid4().hex[:10]}"


def test_publish_then_page_with_since_before_limit(relay, pb_user, channel):
    bob = pb_user("Bob")
    made = []
    for i in range(5):
        r = requests.post(url(relay, channel), json={"text": f"h{i}"}, headers=bob.headers, timeout=10)
        assert r.status_code == 201, r.text
        made.append(r.json()["message"])
    assert made[0]["userid"] == bob.id and made[0]["name"] == "Bob"

    def get(**params):
        r = requests.get(url(relay, channel), params=params, headers=bob.headers, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    assert get() == {"messages": made, "more": False}
    assert get(limit=2) == {"messages": made[3:], "more": True}
    assert get(before=made[3]["ts"], limit=2) == {"messages": made[1:3], "more": True}
    assert get(since=made[0]["ts"], limit=2) == {"messages": made[1:3], "more": True}
    assert get(since=made[2]["ts"], limit=2) == {"messages": made[3:], "more": False}


def test_repeated_client_id_returns_the_first_message_with_200(relay, pb_user, channel):
    bob = pb_user("Bob")
    first = requests.post(url(relay, channel), json={"text": "once", "client_id": "k"}, headers=bob.headers, timeout=10)
    again = requests.post(url(relay, channel), json={"text": "once", "client_id": "k"}, headers=bob.headers, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert len(requests.get(url(relay, channel), headers=bob.headers, timeout=10).json()["messages"]) == 1


async def test_http_publish_reaches_websocket_subscribers_and_ws_repeat_dedupes(relay, pb_user, channel):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    r = requests.post(url(relay, channel), json={"text": "from http", "client_id": "x1"}, headers=bob.headers, timeout=10)
    b = await Client.open(relay.ws_url, bob.token)
    repeat = await b.request({"type": "publish", "channel": channel, "text": "from http", "client_id": "x1"})
    assert repeat["message"] == r.json()["message"]
    assert await a.messages(1) == [r.json()["message"]]
    assert await a.quiet() == []
    await a.close(), await b.close()


@pytest.mark.parametrize("path,body,status,code", [
    ("a.b", {"text": "x"}, 400, "invalid_channel"),
    ("a*", {"text": "x"}, 400, "invalid_channel"),
    ("x" * 65, {"text": "x"}, 400, "invalid_channel"),
    ("ok", {"text": ""}, 400, "invalid_message"),
    ("ok", {"text": 5}, 400, "invalid_message"),
    ("ok", {}, 400, "invalid_message"),
    ("ok", {"text": "x", "client_id": ""}, 400, "bad_request"),
    ("ok", [1, 2], 400, "bad_request"),
    ("ok", "not json", 400, "bad_request"),
    ("ok", {"text": "x" * 70_000}, 413, "too_large"),
])
def test_bad_publishes(relay, pb_user, path, body, status, code):
    bob = pb_user("Bob")
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    r = requests.post(url(relay, path), headers=bob.headers, timeout=10, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "since=abc", "before=1.5", "since=9223372036854775808"])
def test_bad_paging_values_are_400(relay, pb_user, query, channel):
    r = requests.get(url(relay, channel) + "?" + query, headers=pb_user("Bob").headers, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer "}])
def test_unauthorized(relay, headers, channel):
    r = requests.get(url(relay, channel), headers=headers, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")


def listing(relay, user, **params):
    r = requests.get(f"{relay.http_url}api/channels/", params=params, headers=user.headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_channel_list_health_and_readiness(relay, pb_user, channel):
    bob = pb_user("Bob")
    requests.post(url(relay, channel), json={"text": "x"}, headers=bob.headers, timeout=10)
    # the channel's row is written within a second of its first use
    mine = wait_until(lambda: [c for c in listing(relay, bob, after=channel[:-1], limit=1)["channels"]
                               if c["channel"] == channel], 10, what="the channel")
    assert len(mine) == 1 and mine[0]["access"] == "open" and mine[0]["messages"] == 1
    assert mine[0]["subscribers"] == 0 and isinstance(mine[0]["last_ts"], int)
    assert requests.get(f"{relay.http_url}healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{relay.http_url}readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    metrics = requests.get(f"{relay.http_url}metrics", timeout=10)
    assert "relay_messages_published_total" in metrics.text


def test_the_readmes_http_example_runs_as_written(relay, pocketbase_server, tmp_path):
    """The README's curl example, taken from the README, in a folder laid out as
    ./scripts/run leaves it (var/demo-users.txt written by the dev runner's own code)."""
    from localservers.dev import ensure_demo_users

    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("The same over HTTP", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / "var").mkdir()
    ensure_demo_users(pocketbase_server, tmp_path / "var" / "demo-users.txt")
    env = {"PATH": os.environ["PATH"], "POCKETBASE_URL": pocketbase_server.url, "RELAY_URL": relay.http_url.rstrip("/")}
    done = subprocess.run(["bash", "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    posted, page = (json.loads(line) for line in done.stdout.splitlines())
    assert posted["message"]["text"] == "over HTTP" and posted["message"]["name"] == "Bob", posted
    assert page["messages"][-1] == posted["message"] and len(page["messages"]) <= 10


def test_channel_list_pages_by_name_and_lists_only_readable_channels(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    prefix = f"page-{uuid.uuid4().hex[:8]}-"
    names = [f"{prefix}{i}" for i in range(5)]
    for name in names[:4]:
        assert requests.post(url(relay, name), json={"text": "x"}, headers=bob.headers, timeout=10).status_code == 201
    relay.manage("channel", names[4], "--access", "members", "--add-member", bob.id)
    wait_until(lambda: len(listing(relay, bob, after=prefix, limit=5)["channels"]) == 5, 10, what="the channels")

    def page(user, after, limit):
        body = listing(relay, user, after=after, limit=limit)
        return [c["channel"] for c in body["channels"]], body["more"]

    assert page(bob, prefix, 2) == (names[:2], True)
    assert page(bob, names[1], 2) == (names[2:4], True)
    assert page(bob, names[3], 2) == (names[4:], False)  # the last channels of all by name
    assert page(alice, names[3], 2) == ([], False)  # a members channel without her
    first, members_only = listing(relay, bob, after=names[0], limit=1)["channels"][0], page(bob, names[3], 1)
    assert (first["channel"], first["access"], first["messages"], first["subscribers"]) == (names[1], "open", 1, 0)
    assert isinstance(first["last_ts"], int) and members_only == ([names[4]], False)
    assert page(bob, prefix, 5000) == (names, False)  # limit clamped to 1000, not refused


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=1.5", "after=a.b", "after=", f"after={'x' * 65}"])
def test_bad_channel_list_paging_values_are_400(relay, pb_user, query):
    r = requests.get(f"{relay.http_url}api/channels/?{query}", headers=pb_user("Bob").headers, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")
