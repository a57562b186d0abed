"""Settings of the relay, read from the environment (see the README's settings table).

Every setting named in PROTOCOL.md is read here with its documented default, through
django-environ made strict (relay_project/environment.py): a value that is not of its
setting's kind fails at start with one ImproperlyConfigured sentence naming it.
"""
import re
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from relay_project import logging as relay_logging
from relay_project.environment import Env

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()


def throttle_rate(name: str, default: str) -> str | None:
    """A django-ratelimit rate from the environment: "N/P", at most N per window of P
    (s, m, h or d, with an optional multiplier: "10/15m"); empty turns the throttle off
    (None). Raises ImproperlyConfigured for anything else."""
    value = env.str(name, default=default).strip()
    if value and not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(f"{name}={value!r}: expected N/P such as 10/15m (P: s, m, h or d), or empty for off")
    return value or None


DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Without DJANGO_SECRET_KEY the relay runs with a key that Django's own
# `check --deploy` flags as insecure (prefix "django-insecure-"): fine for development
# and tests, never for production.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-relay-development-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind TLS: cookies only over HTTPS, and trust the proxy's X-Forwarded-Proto.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
NATS_URL = env.str("NATS_URL", default="nats://127.0.0.1:4222")  # comma-separated for a cluster
# Replicas of the JetStream stream EVENTS when the relay creates it (3 on a 3-node cluster).
RELAY_EVENTS_REPLICAS = env.int("RELAY_EVENTS_REPLICAS", default=1)
# Bytes the stream EVENTS keeps at most when the relay creates it (the oldest events go first).
RELAY_EVENTS_MAX_BYTES = env.int("RELAY_EVENTS_MAX_BYTES", default=256 * 2**20)
POCKETBASE_URL = env.str("POCKETBASE_URL", default="http://127.0.0.1:8090").rstrip("/")
# A PocketBase superuser token: `manage.py channel --add-member` and the admin check with it
# that each new member id is a record of the users collection (auth_pocketbase/users.py).
POCKETBASE_SUPERUSER_TOKEN = env.str("POCKETBASE_SUPERUSER_TOKEN", default="")
# Or a file holding it, read at each check (a new token needs no restart).
POCKETBASE_SUPERUSER_TOKEN_FILE = env.str("POCKETBASE_SUPERUSER_TOKEN_FILE", default="")

# Limits of PROTOCOL.md ("Limits"), with their defaults.
RELAY_MAX_MESSAGE_CHARS = env.int("RELAY_MAX_MESSAGE_CHARS", default=4000)
RELAY_PUBLISH_RATE = env.float("RELAY_PUBLISH_RATE", default=10.0)  # messages/second/user; 0 = off
RELAY_PUBLISH_BURST = env.int("RELAY_PUBLISH_BURST", default=30)
RELAY_HISTORY_MAXLEN = env.int("RELAY_HISTORY_MAXLEN", default=10000)
RELAY_HISTORY_MAX_AGE = env.int("RELAY_HISTORY_MAX_AGE", default=30 * 24 * 3600)  # seconds
RELAY_AUTH_CACHE_SECONDS = env.float("RELAY_AUTH_CACHE_SECONDS", default=30.0)
RELAY_MAX_SUBSCRIPTIONS_PER_USER = env.int("RELAY_MAX_SUBSCRIPTIONS_PER_USER", default=500)
RELAY_MAX_CONNECTIONS_PER_USER = env.int("RELAY_MAX_CONNECTIONS_PER_USER", default=20)
RELAY_METRICS_TOKEN = env.str("RELAY_METRICS_TOKEN", default="")
# Throttles of the page's login and sign-up forms (auth_pocketbase/throttle.py), counted
# in Redis by every instance together. Failed logins per account (the email, from any
# address) and per client address; sign-ups per client address, which also bounds how
# many accounts (each with its own per-user limits) one address can make.
RELAY_LOGIN_ACCOUNT_RATE = throttle_rate("RELAY_LOGIN_ACCOUNT_RATE", "10/15m")
RELAY_LOGIN_IP_RATE = throttle_rate("RELAY_LOGIN_IP_RATE", "30/15m")
RELAY_SIGNUP_IP_RATE = throttle_rate("RELAY_SIGNUP_IP_RATE", "5/h")
# Bytes that may wait in daphne for one WebSocket client that does not read; the next
# frame then closes the connection with 4408 (messaging/deliver/websocket.py).
RELAY_MAX_OUTGOING_BYTES = env.int("RELAY_MAX_OUTGOING_BYTES", default=4 * 2**20)
# Seconds an HTTP request's headers and body have to arrive, from the connection's opening
# or its previous response; an idle keep-alive connection is closed after as long
# (overrides/daphne_http.py).
RELAY_HTTP_READ_TIMEOUT = env.float("RELAY_HTTP_READ_TIMEOUT", default=20.0)
# Seconds JetStream waits for a worker's ack before redelivering an event to another worker.
RELAY_WORKER_ACK_WAIT = env.float("RELAY_WORKER_ACK_WAIT", default=10.0)
# Each connection refreshes its presence and group membership and checks the history
# for anything the channel layer lost this often (seconds).
RELAY_HEARTBEAT_SECONDS = env.float("RELAY_HEARTBEAT_SECONDS", default=20.0)
# A relay_worker serves its own Prometheus metrics here when the port is not 0.
RELAY_WORKER_METRICS_PORT = env.int("RELAY_WORKER_METRICS_PORT", default=0)
RELAY_WORKER_METRICS_ADDR = env.str("RELAY_WORKER_METRICS_ADDR", default="127.0.0.1")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "django_ratelimit",
    "auth_pocketbase",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # before WhiteNoise: static files get the policy too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy of every response (django-csp): everything from the relay's own
# origin, nothing inline (the templates load their scripts and styles from static files),
# no plugins, no <base>, no framing. 'self' covers the page's WebSocket too: ws(s):// on
# the page's own host and port (CSP Level 3; tests/browser/test_content_security_policy.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

ROOT_URLCONF = "relay_project.urls"
ASGI_APPLICATION = "relay_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # daphne, the workers and management commands share one file: wait on locks.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)

# The channel layer hands events from the workers to the connections' processes.
# Redis pub/sub (channels_redis.pubsub) pushes each group_send to the processes that
# hold the group's connections in one PUBLISH, with no per-message polling; events it
# drops while a process reconnects are caught up from the history (deliver/delivery.py).
# overrides.channels_redis_layer.RelayChannelLayer is that layer plus a one-command
# group_send_many for the workers' batches and channels that feed a connection's inbox.
# It speaks RESP2: under redis-py's default RESP3 every pub/sub message is a push that
# redis-py formats into a debug log string, logged or not (docs/performance.md).
CHANNEL_LAYERS = {
    "default": {"BACKEND": "overrides.channels_redis_layer.RelayChannelLayer",
                "CONFIG": {"hosts": [{"address": REDIS_URL, "protocol": 2}]}},
}

# Django's cache holds the login and sign-up throttles' counters (django-ratelimit): in
# Redis, so that every instance counts together. Connections give up after 2 s, so a
# stalled Redis makes those forms answer 503 rather than hang.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "relay:cache",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    },
}
# django-ratelimit warns that Django's own RedisCache is not on its list of tested
# backends; what it needs, an atomic add (SET NX) and increment (INCR), Redis has.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default="") or None  # for collectstatic, if wanted
# WhiteNoise serves the app's static files from the apps themselves under daphne, in
# development and production alike (no collectstatic step needed to run).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
LOGIN_URL = "/login/"

# One JSON object per line unless DJANGO_DEBUG (then readable lines); RELAY_LOG_FORMAT
# (json or text) overrides. Tokens never reach the logs (relay_project/logging.py).
LOGGING = relay_logging.config(
    env.choice("RELAY_LOG_FORMAT", ("json", "text"), default="text" if DEBUG else "json") == "json",
    env.choice("RELAY_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), default="INFO"),
)
