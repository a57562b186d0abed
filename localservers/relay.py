"""The relay itself as real processes (daphne + relay_worker) for end-to-end tests."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import requests
from mirakuru import SimpleExecutor
from mirakuru.exceptions import ProcessFinishedWithError

from ._server import ReadyExecutor, ServerStartError
from ._util import free_port, tail, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_BANNER = "relay_worker ready"


class RelayProcess:
    """One relay process (daphne or a worker) logging to ``log_path``.

    ``pid`` (int or None), ``running()``, ``stop()`` (SIGTERM, wait),
    ``kill()`` (SIGKILL at once, wait), ``returncode`` (after it ended),
    ``log_tail(lines)``. Workers also have ``env`` and ``args`` (their extras) and
    ``metrics_port`` / ``metrics_url`` (None without ``--metrics-port``).
    """

    def __init__(self, name: str, executor: SimpleExecutor, log_path: Path, log: IO[str]) -> None:
        self.name = name
        self.log_path = log_path
        self.returncode: int | None = None
        self.env: dict[str, str] = {}
        self.args: list[str] = []
        self.metrics_port: int | None = None
        self.metrics_url: str | None = None
        self._executor = executor
        self._log = log

    @property
    def pid(self) -> int | None:
        """PID while started (None after stop/kill)."""
        proc = self._executor.process
        return proc.pid if proc else None

    def running(self) -> bool:
        """True while the process is alive."""
        return self._executor.running()

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait (SIGKILL after the executor's timeout); returns the exit code."""
        proc = self._executor.process
        if proc is not None:
            try:
                self._executor.stop()
            except ProcessFinishedWithError as exc:
                self.returncode = exc.exit_code
            else:
                self.returncode = proc.returncode
        self._log.close()
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the process (a crash) and wait for it to be gone."""
        proc = self._executor.process
        self._executor.kill(sig=signal.SIGKILL)
        if proc is not None:
            self.returncode = proc.returncode
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of this process's output."""
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"<RelayProcess {self.name} pid={self.pid} running={self.running()}>"


class WebProcess(RelayProcess):
    """A daphne instance; also has ``port``, ``http_url`` and ``ws_url``."""

    def __init__(self, name: str, executor: SimpleExecutor, log_path: Path, log: IO[str],
                 port: int) -> None:
        super().__init__(name, executor, log_path, log)
        self.port = port
        self.http_url = f"http://127.0.0.1:{port}/"
        self.ws_url = f"ws://127.0.0.1:{port}/ws/"


def _healthz_ok(url: str) -> bool:
    resp = requests.get(url, timeout=2)
    return resp.status_code == 200 and resp.json().get("status") == "ok"


class Relay:
    """The relay as real processes: ``migrate``, daphne instances, ``relay_worker``s.

    ``env`` (str -> str) is added on top of this process's environment for every
    relay process (REDIS_URL, NATS_URL, POCKETBASE_URL, DATABASE_URL, RELAY_*...).
    Files (SQLite db, one log per process) go in ``base_dir``. ``timeout`` is the
    seconds each process has to become ready (``ServerStartError`` otherwise).

    After :meth:`start`: ``http_url`` (``http://127.0.0.1:PORT/``), ``ws_url``
    (``ws://127.0.0.1:PORT/ws/``), ``web`` (the first daphne), ``webs`` and
    ``workers`` (lists of :class:`RelayProcess`).
    """

    def __init__(self, base_dir: str | Path, env: dict[str, str], workers: int = 2,
                 python: str = sys.executable, repo_root: str | Path = REPO_ROOT,
                 timeout: float = 90.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.repo_root = Path(repo_root)
        self.python = python
        self.timeout = timeout
        self.initial_workers = workers
        self.env = {
            "DJANGO_SETTINGS_MODULE": "relay_project.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{self.base_dir / 'db.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in env.items()},
        }
        self.webs: list[WebProcess] = []
        self.workers: list[RelayProcess] = []
        self._counter = 0

    # -- properties ---------------------------------------------------------------------
    @property
    def web(self) -> WebProcess:
        """The first daphne instance."""
        return self.webs[0]

    @property
    def running_workers(self) -> list[RelayProcess]:
        """The workers still alive (``workers`` keeps killed ones too)."""
        return [w for w in self.workers if w.running()]

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT/`` of the first daphne."""
        return self.web.http_url

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/`` of the first daphne."""
        return self.web.ws_url

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> "Relay":
        """Migrate the database, start one daphne and the workers; returns self."""
        self.migrate()
        self.start_web()
        for _ in range(self.initial_workers):
            self.start_worker()
        return self

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after the timeout)."""
        for proc in [*self.workers, *self.webs]:
            proc.stop()

    def manage(self, *args: str, timeout: float = 120.0, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``python manage.py ARGS`` with the relay's env; returns the
        CompletedProcess (text ``stdout``/``stderr``). Raises ``CalledProcessError``
        when ``check`` and it exits non-zero."""
        return subprocess.run([self.python, "manage.py", *args], cwd=self.repo_root,
                              env=self._full_env(env), capture_output=True, text=True,
                              timeout=timeout, check=check)

    def migrate(self) -> None:
        """``manage.py migrate --noinput``; raises ServerStartError with its output."""
        done = self.manage("migrate", "--noinput", check=False)
        (self.base_dir / "migrate.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise ServerStartError(f"migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def start_web(self, port: int | None = None) -> WebProcess:
        """Start a daphne instance (on ``port`` or a free one) and wait until
        ``GET /healthz`` answers 200 ``{"status": "ok"}``; returns it."""
        port = port or free_port()
        name = f"web-{port}"
        url = f"http://127.0.0.1:{port}/healthz"
        cmd = [self.python, "-m", "relay_project.serve", "-b", "127.0.0.1", "-p", str(port)]
        log_path, log = self._open_log(name)
        executor = ReadyExecutor(cmd, host="127.0.0.1", port=port, ready=lambda: _healthz_ok(url),
                                 **self._executor_kwargs(log))
        web = WebProcess(name, executor, log_path, log, port)
        self._start(web, executor)
        self.webs.append(web)
        return web

    def restart_web(self, index: int = 0) -> WebProcess:
        """Stop daphne number ``index`` and start it again on the same port."""
        old = self.webs[index]
        old.stop()
        new = self.start_web(port=old.port)
        self.webs.remove(new)
        self.webs[index] = new
        return new

    def start_worker(self, env: dict[str, str] | None = None, args: tuple[str, ...] | list[str] = (),
                     metrics_port: int | None = None) -> RelayProcess:
        """Start a ``manage.py relay_worker`` and wait for its ``relay_worker ready``
        line; appends it to ``workers`` and returns it.

        ``env`` is added on top of the relay's env for this worker only, ``args`` are
        appended to its command line. ``metrics_port`` (``0`` = a free port) adds
        ``--metrics-port P``; the worker then has ``metrics_port`` and ``metrics_url``
        (``http://127.0.0.1:P/metrics``; also set from ``--metrics-port`` in ``args`` or
        ``RELAY_WORKER_METRICS_PORT`` in the env), else both are None.
        """
        self._counter += 1
        name = f"worker-{self._counter}"
        args = [str(a) for a in args]
        if metrics_port is not None:
            metrics_port = metrics_port or free_port()
            args += ["--metrics-port", str(metrics_port)]
        elif "--metrics-port" in args[:-1]:
            metrics_port = int(args[args.index("--metrics-port") + 1]) or None
        else:
            metrics_port = int(self._full_env(env).get("RELAY_WORKER_METRICS_PORT") or 0) or None
        log_path, log = self._open_log(name)
        offset = log_path.stat().st_size
        executor = SimpleExecutor([self.python, "manage.py", "relay_worker", *args],
                                  **self._executor_kwargs(log, env))
        worker = RelayProcess(name, executor, log_path, log)
        worker.env = dict(env or {})
        worker.args = list(args)
        worker.metrics_port = metrics_port
        worker.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
        executor.start()

        def ready() -> bool:
            with open(log_path, "rb") as fh:
                fh.seek(offset)
                if WORKER_BANNER.encode() in fh.read():
                    return True
            if not executor.running():
                raise ServerStartError(f"{name} exited before it was ready:\n{worker.log_tail()}")
            return False

        try:
            wait_until(ready, self.timeout, what=f"{name}: {WORKER_BANNER!r}")
        except TimeoutError as exc:
            worker.kill()
            raise ServerStartError(f"{exc}\n{worker.log_tail()}") from exc
        except ServerStartError:
            worker.kill()
            raise
        self.workers.append(worker)
        return worker

    def logs(self, lines: int = 30) -> str:
        """The tails of every process's log, for failure reports."""
        parts = []
        for proc in [*self.webs, *self.workers]:
            parts.append(f"--- {proc.name} ({proc.log_path}) ---\n{proc.log_tail(lines)}")
        return "\n".join(parts)

    # -- internals -----------------------------------------------------------------------
    def _full_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        full = dict(os.environ)
        full.update(self.env)
        full.update(extra or {})
        return full

    def _executor_kwargs(self, log: IO[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        return {"cwd": str(self.repo_root), "envvars": self._full_env(env), "timeout": self.timeout,
                "sleep": 0.05, "stdin": subprocess.DEVNULL, "stdout": log,
                "stderr": subprocess.STDOUT}

    def _open_log(self, name: str) -> tuple[Path, IO[str]]:
        path = self.base_dir / f"{name}.log"
        return path, open(path, "a", encoding="utf-8", buffering=1)

    def _start(self, proc: RelayProcess, executor: SimpleExecutor) -> None:
        try:
            executor.start()
        except Exception as exc:
            proc.kill()
            raise ServerStartError(f"{proc.name} did not start: {exc}\n{proc.log_tail()}") from exc
