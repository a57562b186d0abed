"""The terminal client (`python -m messaging.client`) plays the seed scenario."""
import json
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.e2e


def client_cmd(relay, pocketbase_server, user, *args):
    return [sys.executable, "-m", "messaging.client", "--url", relay.http_url, "--pocketbase", pocketbase_server.url,
            "--email", user.email, "--password", user.password, *args]


def next_frame(client: subprocess.Popen) -> dict:
    """The next frame a running `--json` client printed; fails with its stderr when it ended first."""
    line = client.stdout.readline()
    if not line:
        client.wait(timeout=60)
        pytest.fail(f"the client ended (exit code {client.returncode}) before printing a frame: {client.stderr.read()}")
    return json.loads(line)


def test_seed_scenario_with_the_terminal_client(relay, pocketbase_server, pb_user):
    # a password beginning with "-" (as generated ones may) is a value, not an option
    alice, bob = pb_user("Alice", password=f"-{uuid.uuid4().hex}"), pb_user("Bob")
    channel = f"cli-{uuid.uuid4().hex[:8]}"
    sent = subprocess.run(client_cmd(relay, pocketbase_server, bob, "--send", channel, "hello alice"),
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr

    listener = subprocess.Popen(
        client_cmd(relay, pocketbase_server, alice, "--subscribe", channel, "--wait-for", "2", "--timeout", "60", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = next_frame(listener)  # welcome
    assert first["type"] == "welcome" and first["userid"] == alice.id
    subscribed = next_frame(listener)
    assert subscribed["type"] == "subscribed" and [m["text"] for m in subscribed["messages"]] == ["hello alice"]

    live = subprocess.run(client_cmd(relay, pocketbase_server, bob, "--send", channel, "are you there?"),
                          capture_output=True, text=True, timeout=60)
    assert live.returncode == 0, live.stderr
    out, err = listener.communicate(timeout=60)
    assert listener.returncode == 0, err
    frames = [json.loads(line) for line in out.splitlines()]
    messages = [f["message"] for f in frames if f["type"] == "message"]
    assert [(m["name"], m["text"]) for m in messages] == [("Bob", "are you there?")]


def test_wrong_password_is_one_clear_line(relay, pocketbase_server, pb_user):
    bob = pb_user("Bob")
    bob.password = "not-the-password"
    done = subprocess.run(client_cmd(relay, pocketbase_server, bob, "--send", "c", "x"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.strip()
