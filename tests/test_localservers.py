"""The real-server fixtures themselves: each server answers, keeps its data across
restarts and crashes, and never reuses a port someone else listens on."""

from __future__ import annotations

import asyncio

import nats
import pytest
import redis
import requests

from localservers import AlreadyRunning, PocketBaseError, PocketBaseServer, RedisServer, free_port, port_is_free
from localservers._util import RESERVED_PORTS


def test_free_ports_are_free_and_never_the_machines_own():
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert not ports & RESERVED_PORTS
    assert all(port_is_free(p) for p in ports)


def test_session_servers_use_private_ports(redis_server, nats_server, pocketbase_server):
    for server in (redis_server, nats_server, pocketbase_server):
        assert server.port not in RESERVED_PORTS
        assert server.pid and server.running()
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert pocketbase_server.url == f"http://127.0.0.1:{pocketbase_server.port}"


def test_redis_ping_and_streams(redis_server):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.ping() is True
    entry = client.xadd("relay:history:test-localservers", {"text": "hello"})
    assert client.xrange("relay:history:test-localservers") == [(entry, {"text": "hello"})]
    assert client.config_get("appendonly") == {"appendonly": "yes"}


def test_refuses_a_port_someone_else_listens_on(redis_server, tmp_path):
    intruder = RedisServer(tmp_path / "other", port=redis_server.port)
    with pytest.raises(AlreadyRunning):
        intruder.start()
    assert not intruder.running()
    assert redis_server.running()


@pytest.mark.slow
def test_redis_keeps_acknowledged_writes_across_restart_and_crash(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        first = client.xadd("s", {"n": "1"})
        port, old_pid = server.port, server.pid
        server.restart()
        assert server.port == port and server.pid != old_pid
        second = client.xadd("s", {"n": "2"})
        server.kill()  # SIGKILL: no clean shutdown
        assert not server.running()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()
        server.start()
        assert [e[0] for e in client.xrange("s")] == [first, second]
    finally:
        server.stop()


async def _jetstream_roundtrip(url: str, stream: str) -> bytes:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        ack = await js.publish(f"{stream.lower()}.u1", b"payload")
        assert ack.stream == stream and ack.seq == 1
        sub = await js.pull_subscribe(f"{stream.lower()}.>", durable="w", stream=stream)
        msgs = await sub.fetch(1, timeout=5)
        await msgs[0].ack()
        return msgs[0].data
    finally:
        await nc.close()


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await nc.close()


async def test_nats_jetstream_add_stream_publish_consume(nats_server):
    assert await _jetstream_roundtrip(nats_server.url, "LOCALTEST") == b"payload"
    health = requests.get(f"{nats_server.monitor_url}/healthz", timeout=5)
    assert health.status_code == 200


@pytest.mark.slow
def test_nats_keeps_streams_across_restart(nats_server):
    assert asyncio.run(_jetstream_roundtrip(nats_server.url, "RESTARTTEST")) == b"payload"
    port = nats_server.port
    nats_server.restart()
    assert nats_server.port == port
    assert asyncio.run(_stream_messages(nats_server.url, "RESTARTTEST")) == 1


def test_pocketbase_user_login_and_refresh(pocketbase_server, pb_user):
    user = pb_user("alice")
    assert user.id and user.name == "alice" and user.email.endswith("@example.com")
    assert requests.get(f"{pocketbase_server.url}/api/health", timeout=5).status_code == 200
    resp = requests.post(f"{pocketbase_server.url}/api/collections/users/auth-refresh",
                         headers={"Authorization": user.token}, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["record"]["id"] == user.id
    bad = requests.post(f"{pocketbase_server.url}/api/collections/users/auth-refresh",
                        headers={"Authorization": user.token + "x"}, timeout=5)
    assert bad.status_code == 401
    assert pb_user("alice").id != user.id  # unique every call


def test_a_superuser_api_token_tells_which_user_ids_exist(pocketbase_server, pb_user):
    """What the dev runner writes for POCKETBASE_SUPERUSER_TOKEN works as the relay uses it."""
    from auth_pocketbase.client import PocketBaseClient, PocketBaseRefused

    alice = pb_user("alice")
    client = PocketBaseClient(pocketbase_server.url)
    token = pocketbase_server.api.superuser_api_token(600)
    assert client.existing_users([alice.id, "zzzznotauser"], token) == {alice.id}
    with pytest.raises(PocketBaseRefused) as refused:  # a user's token sees only its own record
        client.existing_users([alice.id], alice.token)
    assert refused.value.status == 403


def test_pocketbase_revocation_helpers(pb_admin, pb_user):
    changed, deleted = pb_user("carol"), pb_user("dave")
    pb_admin.update_password(changed.id, "a-brand-new-password")
    with pytest.raises(PocketBaseError) as refused:
        pb_admin.auth_refresh(changed.token)
    assert refused.value.status == 401
    assert pb_admin.login(changed.email, "a-brand-new-password")[1]["id"] == changed.id
    pb_admin.delete_user(deleted.id)
    with pytest.raises(PocketBaseError):
        pb_admin.auth_refresh(deleted.token)
    assert pb_admin.find_user(deleted.email) is None


@pytest.mark.slow
def test_pocketbase_keeps_users_across_restart(pocketbase_server, pb_user):
    user = pb_user("erin")
    pocketbase_server.restart()
    token, record = pocketbase_server.api.login(user.email, user.password)
    assert record["id"] == user.id
    assert pocketbase_server.api.auth_refresh(user.token)[1]["id"] == user.id


def test_a_killed_session_server_is_revived_for_the_next_test(redis_server):
    redis_server.kill()
    assert not redis_server.running()


def test_the_killed_server_is_back(redis_server):
    assert redis.Redis.from_url(redis_server.url).ping() is True


def test_pocketbase_starts_with_a_superuser_password_that_looks_like_a_flag(tmp_path):
    """Regression: a generated password starting with '-' was read as a CLI flag."""
    server = PocketBaseServer(tmp_path / "pb", superuser_password="-0jOZZOLDa8SpCSBZIuYoB_k")
    server.start()
    try:
        assert server.api.superuser_token()
    finally:
        server.stop()
