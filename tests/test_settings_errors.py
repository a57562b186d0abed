"""A bad value in any setting stops each entry point (daphne through
relay_project.serve, the worker, relay_check) with one line that names the setting and
the value, and a non-zero exit: never a traceback, never a guess. Each entry point runs
as a subprocess, pointed at closed ports so nothing reaches this machine's servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localservers import free_port

ROOT = Path(__file__).resolve().parent.parent

ENTRY_POINTS = {
    "daphne": lambda: ["-m", "relay_project.serve", "-b", "127.0.0.1", "-p", str(free_port())],
    "relay_worker": lambda: ["manage.py", "relay_worker"],
    "relay_check": lambda: ["manage.py", "relay_check"],
}

BAD_VALUES = [
    ("RELAY_EVENTS_MAX_BYTES", "abc", "is not an integer"),
    ("RELAY_MAX_MESSAGE_CHARS", "1.5", "is not an integer"),
    ("RELAY_PUBLISH_RATE", "fast", "is not a number"),
    ("RELAY_HEARTBEAT_SECONDS", "2x0", "is not a number"),  # django-environ alone reads 20
    ("RELAY_AUTH_CACHE_SECONDS", "nan", "is not a number"),
    ("DJANGO_DEBUG", "maybe", "is not true or false"),  # django-environ alone reads false
    ("DJANGO_SECURE_COOKIES", "ture", "is not true or false"),
    ("RELAY_LOG_FORMAT", "xml", "is not one of"),
    ("RELAY_LOG_LEVEL", "LOUD", "is not one of"),
    ("DATABASE_URL", "nonsense", "is not a database URL"),
]


def run_entry_point(argv: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "relay_project.settings",
            "REDIS_URL": "redis://127.0.0.1:1/0", "NATS_URL": "nats://127.0.0.1:1",
            "POCKETBASE_URL": "http://127.0.0.1:1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    try:
        return subprocess.run([sys.executable, *argv], cwd=ROOT, env={**base, **env},
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{argv} took the bad setting and kept running: {exc.stderr}")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("name,value,says", BAD_VALUES)
def test_a_bad_setting_is_one_line_and_a_non_zero_exit(entry, name, value, says, tmp_path):
    done = run_entry_point(ENTRY_POINTS[entry](), {name: value}, tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {name}={value!r} {says}"), lines[0]


@pytest.mark.parametrize("env,expected", [
    ({"DJANGO_DEBUG": "yes", "DJANGO_SECURE_COOKIES": "On", "RELAY_PUBLISH_RATE": "2.5",
      "RELAY_EVENTS_MAX_BYTES": " 1048576 ", "RELAY_LOG_LEVEL": "warning"},
     "True True 2.5 1048576 WARNING overrides.channels_redis_layer.RelayChannelLayer"),
    ({"DJANGO_DEBUG": "0", "DJANGO_SECURE_COOKIES": "", "RELAY_PUBLISH_RATE": "0"},
     "False False 0.0 268435456 INFO overrides.channels_redis_layer.RelayChannelLayer"),
])
def test_good_values_in_their_usual_spellings_are_taken(env, expected, tmp_path):
    show = ("from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.RELAY_PUBLISH_RATE, "
            "s.RELAY_EVENTS_MAX_BYTES, s.LOGGING['root']['level'], s.CHANNEL_LAYERS['default']['BACKEND'])")
    done = run_entry_point(["manage.py", "shell", "-c", show], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected  # after Django's shell banner
