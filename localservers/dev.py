"""Command line used by scripts/run and the Procfile: ``python -m localservers ...``.

Subcommands:
  ports NAME=DEFAULT ...      print ``NAME=PORT`` lines (shell) with a free port for each
  redis --port P --dir D      exec redis-server (AOF) in the foreground
  nats --port P --dir D       exec nats-server -js in the foreground
  pocketbase --port P --dir D --superuser-file F --superuser-token-file F --demo-users F [--page-url U]
                              run PocketBase, create the demo users, print their
                              credentials, write a superuser token (for
                              POCKETBASE_SUPERUSER_TOKEN), and stop PocketBase on
                              SIGINT/SIGTERM/SIGHUP
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from pathlib import Path

from ._util import choose_port, port_is_free
from .nats_server import NatsServer
from .pocketbase_api import PocketBaseError
from .pocketbase_server import PocketBaseServer
from .redis_server import RedisServer

DEMO_USERS = (("alice", "Alice"), ("bob", "Bob"))
SUPERUSER_TOKEN_SECONDS = 30 * 86400  # the dev runner writes a new one at every start


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_ports(args: argparse.Namespace) -> int:
    """Pick ports. A NAME already set in the environment must be free (else exit 1);
    otherwise DEFAULT, or the next free port above it, announced on stderr."""
    taken: set[int] = set()
    for spec in args.specs:
        name, _, default = spec.partition("=")
        if os.environ.get(name):
            port = int(os.environ[name])
            if not port_is_free(port):
                _say(f"error: {name}={port} is set but that port is already in use")
                return 1
        else:
            port = int(default)
            while True:
                port = choose_port(port)
                if port not in taken:
                    break
                port += 1
            if port != int(default):
                _say(f"note: port {default} is already in use on this machine (left alone); "
                     f"{name}={port} instead")
        taken.add(port)
        print(f"{name}={port}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Replace this process with the server, so signals reach it directly."""
    cls = RedisServer if args.cmd == "redis" else NatsServer
    kwargs = {"http_port": 0} if args.cmd == "nats" else {}
    server = cls(args.dir, port=args.port, log_path="inherit", **kwargs)
    argv = server.command()
    os.chdir(server.data_dir)
    os.execv(argv[0], argv)
    return 1  # not reached


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _read_pairs(path: Path) -> dict[str, str]:
    """``key password`` lines (first two words), '#' comments ignored."""
    pairs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and not line.startswith("#"):
                pairs[words[0]] = words[1]
    return pairs


def ensure_demo_users(server: PocketBaseServer, path: Path) -> list[tuple[str, str, str]]:
    """Make sure alice and bob exist with the passwords kept in ``path`` (generated
    on first run, file mode 0600). Returns ``[(email, password, name), ...]``."""
    known = _read_pairs(path)
    result = []
    for login, name in DEMO_USERS:
        email = f"{login}@example.com"
        password = known.get(email) or secrets.token_urlsafe(12)
        try:
            server.api.login(email, password)
        except PocketBaseError:
            user = server.api.find_user(email)
            if user is None:
                server.api.create_user(email, password, name)
            else:
                server.api.update_password(user["id"], password)
        result.append((email, password, name))
    lines = ["# Demo users of ./scripts/run (email password name). Keep private."]
    lines += [f"{email} {password} {name}" for email, password, name in result]
    _write_private(path, "\n".join(lines) + "\n")
    return result


def _stop_on_signals() -> None:
    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def cmd_pocketbase(args: argparse.Namespace) -> int:
    """Run PocketBase until a signal comes; exit with its code if it dies."""
    _stop_on_signals()
    su_file = Path(args.superuser_file)
    su = _read_pairs(su_file)
    email, password = next(iter(su.items()), ("admin@example.com", secrets.token_urlsafe(18)))
    _write_private(su_file, f"{email} {password}\n")
    server = PocketBaseServer(args.dir, port=args.port, log_path="inherit",
                              superuser_email=email, superuser_password=password)
    try:
        server.start()
        users = ensure_demo_users(server, Path(args.demo_users))
        _write_private(Path(args.superuser_token_file), server.api.superuser_api_token(SUPERUSER_TOKEN_SECONDS) + "\n")
        print(f"PocketBase ready at {server.url}/_/ (superuser: {email}, password in {su_file})")
        print(f"Open {args.page_url} and sign in as:")
        for user_email, user_password, name in users:
            print(f"    {name}: {user_email} / {user_password}")
        print(f"(kept in {args.demo_users})", flush=True)
        code = server.wait()
        print(f"pocketbase exited with {code}", file=sys.stderr)
        return code or 1
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localservers``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m localservers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    ports = sub.add_parser("ports", help="choose free ports")
    ports.add_argument("specs", nargs="+", metavar="NAME=DEFAULT")
    for name in ("redis", "nats", "pocketbase"):
        p = sub.add_parser(name, help=f"run {name} in the foreground")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--dir", required=True)
        if name == "pocketbase":
            p.add_argument("--superuser-file", required=True)
            p.add_argument("--superuser-token-file", required=True)
            p.add_argument("--demo-users", required=True)
            p.add_argument("--page-url", default="http://127.0.0.1:8000/")
    args = parser.parse_args(argv)
    if args.cmd == "ports":
        return cmd_ports(args)
    if args.cmd == "pocketbase":
        return cmd_pocketbase(args)
    return cmd_exec(args)
