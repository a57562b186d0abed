"""The operators' management commands against the running relay's servers."""
import json
import uuid

import pytest
import redis

from .streams import events_for
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
    empty = relay.manage("replay", channel, "--since", str(sent[2]["ts"]), "--until", "1h", check=False)
    assert empty.returncode != 0 and "the range is empty" in empty.stderr  # "1h" ago is before all of them
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
    (["replay", "ok", "--user", "nosuchuser"], "not PocketBase users: nosuchuser"),
    (["replay", "ok", "--since", "10m", "--until", "1h"], "the range is empty"),
    (["replay", "ok", "--since", "5", "--until", "5"], "the range is empty"),
    (["history", "ok", "--since", "10m", "--until", "1h"], "the range is empty"),
    (["replay"], "channel"),
    (["channel", "*"], "invalid channel"),
])
def test_bad_arguments_end_in_one_line_without_traceback(relay, args, needle):
    done = relay.manage(*args, check=False)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert needle in done.stderr.strip().splitlines()[-1]  # one line says what is wrong


def test_replay_to_a_user_says_when_users_cannot_be_checked(relay, pb_user):
    bob = pb_user("Bob")
    for env, needle in [({"POCKETBASE_SUPERUSER_TOKEN": ""}, "POCKETBASE_SUPERUSER_TOKEN is not set"),
                        ({"POCKETBASE_SUPERUSER_TOKEN": "not-a-token"}, "refused POCKETBASE_SUPERUSER_TOKEN"),
                        ({"POCKETBASE_URL": "http://127.0.0.1:1"}, "is unavailable")]:
        done = relay.manage("replay", "ok", "--user", bob.id, check=False, env=env)
        assert done.returncode != 0 and "Traceback" not in done.stderr, env
        assert needle in done.stderr.strip().splitlines()[-1], env


async def test_replay_goes_only_to_users_who_may_read(relay, pb_user, redis_server, nats_server):
    """`replay --user` refuses a user without access; a replay to the subscribers skips
    one left in the fan-out list (as a subscribe racing with an access change can)."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    relay.manage("channel", channel, "--access", "members", "--add-member", alice.id)
    a = await Client.open(relay.ws_url, alice.token)
    await a.request({"type": "subscribe", "channel": channel})
    sent = (await a.request({"type": "publish", "channel": channel, "text": "members only"}))["message"]
    assert await a.messages(1) == [sent]
    redis.Redis.from_url(redis_server.url).sadd(f"relay:subscribers:{channel}", bob.id)
    refused = relay.manage("replay", channel, "--user", bob.id, "--since", "10m", check=False)
    assert refused.returncode != 0 and f"user {bob.id} may not read channel {channel}" in refused.stderr
    assert relay.manage("replay", channel, "--since", "10m").stdout.strip() == f"replayed 1 message of {channel}"
    assert await a.recv() == {"type": "message", "message": sent, "replay": True}
    assert (await events_for(nats_server.url, alice.id), await events_for(nats_server.url, bob.id)) == (2, 0)
    await a.close()


def test_relay_check_passes_on_healthy_servers_and_names_what_is_wrong(relay):
    healthy = relay.manage("relay_check", check=False)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "ok      redis" in healthy.stdout and "ok      pocketbase" in healthy.stdout
    assert "ok      pocketbase: POCKETBASE_SUPERUSER_TOKEN is a superuser token." in healthy.stdout
    broken = relay.manage("relay_check", check=False, env={
        "NATS_URL": "nats://127.0.0.1:1", "DJANGO_ALLOWED_HOSTS": "", "RELAY_PUBLISH_BURST": "0",
        "POCKETBASE_SUPERUSER_TOKEN": "not-a-token",
    })
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "ERROR   nats: cannot reach NATS at nats://127.0.0.1:1" in broken.stdout
    assert "DJANGO_ALLOWED_HOSTS is empty" in broken.stdout
    assert "RELAY_PUBLISH_BURST is 0" in broken.stdout
    assert "refused POCKETBASE_SUPERUSER_TOKEN (HTTP 401: invalid or expired; make a new superuser token)." in broken.stdout
    assert "4 problems found" in broken.stderr


def channel_lines(relay, channel, *args, **kwargs) -> dict[str, str]:
    """`manage.py channel C ARGS` as {"access": ..., "members": ..., ...} (its stdout lines)."""
    out = relay.manage("channel", channel, *args, **kwargs).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def refused(done) -> str:
    """The one line a refused command printed (it must exit non-zero, without a traceback)."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and done.stderr.strip(), done.stderr
    return done.stderr.strip().splitlines()[-1]


async def test_channel_member_flags_add_up_when_repeated(relay, pb_user):
    alice, bob, carol, dave = (pb_user(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    shown = channel_lines(relay, channel, "--access", "members", "--add-member", alice.id,
                          "--add-member", bob.id, carol.id, "--add-member", dave.id)
    assert shown["members"].split() == sorted([alice.id, bob.id, carol.id, dave.id])
    a = await Client.open(relay.ws_url, alice.token)  # the first flag's member is not locked out
    assert (await a.request({"type": "subscribe", "channel": channel}))["type"] == "subscribed"
    shown = channel_lines(relay, channel, "--remove-member", alice.id, "--remove-member", bob.id, carol.id)
    assert shown["members"].split() == [dave.id]
    assert await a.recv() == {"type": "unsubscribed", "channel": channel, "reason": "forbidden"}
    await a.close()


def test_channel_refuses_member_ids_that_are_not_pocketbase_users(relay, pb_user):
    alice = pb_user("Alice")
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    line = refused(relay.manage("channel", channel, "--access", "members", "--add-member", alice.id,
                                "--add-member", "zzzznotauser", alice.email.split("@")[0], check=False))
    assert "zzzznotauser" in line and alice.email.split("@")[0] in line and alice.id not in line
    assert "not PocketBase users" in line and "nothing changed" in line
    shown = channel_lines(relay, channel)  # nothing changed: not even the access
    assert (shown["access"], shown["members"]) == ("open", "-")


def test_channel_members_are_not_changed_when_pocketbase_cannot_say(relay, pb_user, pb_admin, tmp_path):
    alice = pb_user("Alice")
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    down = refused(relay.manage("channel", channel, "--add-member", alice.id, check=False,
                                env={"POCKETBASE_URL": "http://127.0.0.1:1"}))
    assert "PocketBase" in down and "http://127.0.0.1:1" in down and "nothing changed" in down
    unset = refused(relay.manage("channel", channel, "--add-member", alice.id, check=False,
                                 env={"POCKETBASE_SUPERUSER_TOKEN": ""}))
    assert "POCKETBASE_SUPERUSER_TOKEN is not set" in unset
    for token in (alice.token, "not-a-token"):  # a user's token cannot see other users
        wrong = refused(relay.manage("channel", channel, "--add-member", alice.id, check=False,
                                     env={"POCKETBASE_SUPERUSER_TOKEN": token}))
        assert "POCKETBASE_SUPERUSER_TOKEN" in wrong and "superuser" in wrong
    missing = refused(relay.manage("channel", channel, "--add-member", alice.id, check=False, env={
        "POCKETBASE_SUPERUSER_TOKEN": "", "POCKETBASE_SUPERUSER_TOKEN_FILE": str(tmp_path / "absent")}))
    assert f"cannot read POCKETBASE_SUPERUSER_TOKEN_FILE '{tmp_path / 'absent'}'" in missing
    assert channel_lines(relay, channel)["members"] == "-"
    # the token may come from a file instead, read at each check
    (tmp_path / "token").write_text(relay.env["POCKETBASE_SUPERUSER_TOKEN"] + "\n")
    assert channel_lines(relay, channel, "--add-member", alice.id, env={
        "POCKETBASE_SUPERUSER_TOKEN": "", "POCKETBASE_SUPERUSER_TOKEN_FILE": str(tmp_path / "token")})["members"] == alice.id
    channel_lines(relay, channel, "--remove-member", alice.id)
    # removing needs no PocketBase: a deleted user can still be taken off a channel
    gone = pb_user("Gone")
    channel_lines(relay, channel, "--add-member", gone.id)
    pb_admin.delete_user(gone.id)
    assert channel_lines(relay, channel, "--remove-member", gone.id,
                         env={"POCKETBASE_URL": "http://127.0.0.1:1"})["members"] == "-"


def test_removing_a_non_member_says_so_and_changes_nothing(relay, pb_user):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = f"cmd-{uuid.uuid4().hex[:8]}"
    channel_lines(relay, channel, "--access", "members", "--add-member", alice.id)
    line = refused(relay.manage("channel", channel, "--access", "open", "--remove-member", alice.id,
                                "--remove-member", bob.id, check=False))
    assert line.endswith(f"not a member of {channel}: {bob.id}; nothing changed")
    shown = channel_lines(relay, channel)
    assert (shown["access"], shown["members"]) == ("members", alice.id)
    line = refused(relay.manage("channel", channel, "--add-member", bob.id, "--remove-member", bob.id, check=False))
    assert bob.id in line and "both" in line
