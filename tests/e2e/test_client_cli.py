"""The terminal client (`python -m relay_client`) plays the seed scenario."""
import asyncio
import json
import queue
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from .wsclient import Client

pytestmark = pytest.mark.e2e


def client_cmd(relay, pocketbase_server, user, *args):
    return [sys.executable, "-m", "relay_client", "--url", relay.http_url, "--pocketbase", pocketbase_server.url,
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


class Interactive:
    """A running interactive client (stdin a pipe); its stdout and stderr lines are read
    by threads, so `expect` can wait for one with a timeout."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lines = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self.seen = {"stdout": [], "stderr": []}  # every line read so far
        self.unmatched = {"stdout": [], "stderr": []}  # read, and not yet returned by expect
        for name in self.lines:
            threading.Thread(target=self._pump, args=(name,), daemon=True).start()

    def _pump(self, name: str) -> None:
        for line in getattr(self.proc, name):
            self.lines[name].put(line.rstrip("\n"))

    async def expect(self, stream: str, fragment: str, timeout: float = 30.0) -> str:
        """The first line of `stream` containing `fragment` that no earlier expect
        returned, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.unmatched[stream]:
                if fragment in line:
                    self.unmatched[stream].remove(line)
                    return line
            if time.monotonic() > deadline:
                pytest.fail(f"no {stream} line with {fragment!r} within {timeout:g}s; seen: {self.seen}")
            try:
                line = await asyncio.to_thread(self.lines[stream].get, True, 0.2)
            except queue.Empty:
                continue
            self.seen[stream].append(line)
            self.unmatched[stream].append(line)

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def quit(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


async def cursor_of(relay, user, channel) -> int | None:
    """The user's cursor for `channel` as a new connection's welcome lists it."""
    client = await Client.open(relay.ws_url, user.token)
    await client.close()
    return {s["channel"]: s["last_ts"] for s in client.welcome["subscriptions"]}.get(channel)


async def test_the_interactive_client_resumes_the_subscriptions_the_welcome_lists(relay, pocketbase_server, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    seen, quiet = (f"cli-{uuid.uuid4().hex[:8]}" for _ in range(2))
    a = await Client.open(relay.ws_url, alice.token)
    for channel in (seen, quiet):
        await a.request({"type": "subscribe", "channel": channel})
    b = await Client.open(relay.ws_url, bob.token)
    before = (await b.request({"type": "publish", "channel": seen, "text": "before"}))["message"]
    assert await a.messages(1) == [before]
    await a.close()
    while await cursor_of(relay, alice, seen) != before["ts"]:  # persisted within a second
        await asyncio.sleep(0.1)
    await b.request({"type": "publish", "channel": seen, "text": "while you were away"})

    client = Interactive(client_cmd(relay, pocketbase_server, alice))
    resuming = await client.expect("stderr", "* resuming")
    assert seen in resuming and quiet in resuming
    assert (await client.expect("stdout", f"* subscribed to {seen}")).endswith(": 1 message")
    assert (await client.expect("stdout", f"[{seen} ")).endswith("Bob: while you were away")
    await client.expect("stdout", f"* subscribed to {quiet}: no new messages")
    await b.request({"type": "publish", "channel": quiet, "text": "live after the restart"})
    assert (await client.expect("stdout", f"[{quiet} ")).endswith("Bob: live after the restart")
    client.type(f"/unsub {quiet}")  # resumed, so subscribed
    assert await client.expect("stdout", f"subscribed from {quiet}") == f"* unsubscribed from {quiet}"
    assert client.quit() == 0
    assert not [line for line in client.seen["stdout"] if "Bob: before" in line]  # resumed after the cursor
    await b.close()


async def test_unsub_of_a_channel_never_subscribed_says_so(relay, pocketbase_server, pb_user):
    alice = pb_user("Alice")
    never, mine = (f"cli-{uuid.uuid4().hex[:8]}" for _ in range(2))
    client = Interactive(client_cmd(relay, pocketbase_server, alice))
    await client.expect("stderr", "/help")  # welcomed
    client.type(f"/unsub {never}")
    assert await client.expect("stdout", f"subscribed to {never}") == f"* not subscribed to {never}"
    client.type(f"/sub {mine}")
    await client.expect("stdout", f"* subscribed to {mine}")
    client.type("/unsub")  # the current channel
    assert await client.expect("stdout", f"subscribed from {mine}") == f"* unsubscribed from {mine}"
    client.type(f"/unsub {mine}")  # again: no longer subscribed
    assert await client.expect("stdout", f"subscribed to {mine}") == f"* not subscribed to {mine}"
    assert client.quit() == 0


def test_sub_with_since_shows_every_missed_message_once_in_order(relay, pocketbase_server, pb_user):
    """`/sub C SINCE` with more messages after SINCE than the relay's reply holds (the
    newest 100, `truncated`): the client fills the gap with history pages and prints
    all of them, oldest first, each once."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"cli-gap-{uuid.uuid4().hex[:8]}"
    url = f"{relay.http_url}api/channels/{channel}/messages"
    with requests.Session() as session:
        def post(text: str) -> dict:
            r = session.post(url, json={"text": text}, headers=bob.headers, timeout=10)
            assert r.status_code == 201, r.text
            return r.json()["message"]

        seen = post("seen before")
        missed = [post(f"missed {i:03d}") for i in range(250)]
    done = subprocess.run(client_cmd(relay, pocketbase_server, alice), input=f"/sub {channel} {seen['ts']}\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("* welcome Alice"), lines[:3]
    assert lines[1] == f"* subscribed to {channel}: 250 messages", lines[:3]
    texts = [re.sub(r"^\[[^]]+\] Bob: ", "", line) for line in lines[2:]]
    assert texts == [m["text"] for m in missed], done.stdout
