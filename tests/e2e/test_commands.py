"""The operators' management commands against the running relay's servers."""
import json
import uuid

import pytest

from .wsclient import Client

pytestmark = pytest.mark.e2e


async def test_history_and_replay_commands(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    sent = [(await b.request({"type": "publish", "channel": channel, "text": f"line {i}"}))["message"] for i in range(5)]
    assert await a.messages(5) == sent

    printed = relay.manage("history", channel, "--json", "--since", str(sent[0]["ts"]), "--limit", "3").stdout
    assert [json.loads(line) for line in printed.splitlines()] == sent[1:4]
    human = relay.manage("history", channel, "--limit", "2").stdout.splitlines()
    assert len(human) == 2 and human[0].endswith("Bob: line 3") and "UTC" in human[0]
    until = relay.manage("history", channel, "--json", "--until", str(sent[1]["ts"])).stdout
    assert [json.loads(line)["id"] for line in until.splitlines()] == [m["id"] for m in sent[:2]]

    dry = relay.manage("replay", channel, "--since", str(sent[2]["ts"]), "--dry-run").stdout
    assert dry.strip() == f"would replay 2 messages of {channel}"
    done = relay.manage("replay", channel, "--since", str(sent[2]["ts"]), "--until", "1h").stdout
    assert "replayed 0 messages" in done  # "1h" ago is before all of them
    done = relay.manage("replay", channel, "--since", "10m").stdout
    assert done.strip() == f"replayed 5 messages of {channel}"
    frames = [await a.recv() for _ in range(5)]
    assert all(f["type"] == "message" and f["replay"] is True for f in frames)
    # replayed events take any worker, so they may come in any order; clients dedupe by id
    assert sorted((f["message"] for f in frames), key=lambda m: m["ts"]) == sent
    # a replay never moves the cursor back, and live delivery goes on after it
    after = (await b.request({"type": "publish", "channel": channel, "text": "after"}))["message"]
    assert await a.messages(1) == [after]
    only_bob = relay.manage("replay", channel, "--user", bob.id, "--since", "10m").stdout
    assert "replayed 6 messages" in only_bob
    assert await a.quiet() == []  # alice is not the one it went to
    await a.close(), await b.close()


@pytest.mark.parametrize("args,needle", [
    (["history", "a.b"], "invalid channel"),
    (["history", "ok", "--since", "yesterday"], "--since"),
    (["history", "ok", "--limit", "0"], "--limit"),
    (["history", "ok", "--limit", "x"], "invalid int"),
    (["replay", "ok", "--until", "2026-13-45"], "--until"),
    (["replay", "ok", "--user", "a.*"], "invalid user id"),
    (["replay"], "channel"),
    (["channel", "*"], "invalid channel"),
])
def test_bad_arguments_end_in_one_line_without_traceback(relay, args, needle):
    done = relay.manage(*args, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert needle in done.stderr.strip().splitlines()[-1]  # one line says what is wrong


def test_relay_check_passes_on_healthy_servers_and_names_what_is_wrong(relay):
    healthy = relay.manage("relay_check", check=False)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "ok      redis" in healthy.stdout and "ok      pocketbase" in healthy.stdout
    broken = relay.manage("relay_check", check=False, env={
        "NATS_URL": "nats://127.0.0.1:1", "DJANGO_ALLOWED_HOSTS": "", "RELAY_PUBLISH_BURST": "0",
    })
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "ERROR   nats: cannot reach NATS at nats://127.0.0.1:1" in broken.stdout
    assert "DJANGO_ALLOWED_HOSTS is empty" in broken.stdout
    assert "RELAY_PUBLISH_BURST is 0" in broken.stdout
    assert "3 problems found" in broken.stderr
