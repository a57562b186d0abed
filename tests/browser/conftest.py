"""Browser fixtures: Debian's Chromium (``/usr/bin/chromium``, never a Playwright
download) driven by Playwright's sync API.

- ``browser`` (module): one headless Chromium per test module. Missing Chromium or
  Playwright skips the browser tests locally and FAILS them under ``CI=true``
  (``./scripts/test`` installs Chromium with apt-get when it can). Not session-scoped
  on purpose: while Playwright's sync API is started, its event loop counts as the
  thread's running loop, so every pytest-asyncio test collected after the browser
  tests would fail ("Runner.run() cannot be called from a running event loop").
  Scoped to the module, Playwright stops before the next module's tests run.
- ``new_page(**context_options)`` (function): a page in a fresh browser context
  (own cookies), 1280x800 unless ``viewport`` says otherwise. Every page records its
  dialogs and JavaScript errors in ``page_log`` and is screenshotted on failure.
- ``page``: ``new_page()``.
- ``page_log``: what the test's pages did: ``dialogs`` (type and message of every
  ``alert``/``confirm``/``prompt``, each dismissed), ``page_errors`` (uncaught
  exceptions), ``console_errors`` (``console.error`` and failed loads);
  ``assert_no_dialogs()``, ``assert_no_js_errors(allow=...)``.

On a failure (setup or call) every page of the test is saved as
``<tmp_path>/failure-<n>.png`` and ``.html``; the paths and the page log are added to
the report.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000

_PAGES_KEY = pytest.StashKey[list]()
_LOG_KEY = pytest.StashKey["PageLog"]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(message: str):
    """Fail under CI (a missing browser must not turn into a green run), else skip."""
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class PageLog:
    """Dialogs and JavaScript errors seen by the pages of one test."""

    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_no_dialogs(self) -> None:
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"

    def assert_no_js_errors(self, allow: tuple[str, ...] = ()) -> None:
        """No uncaught exception and no console error, except console errors matching
        one of the ``allow`` regexes (for example expected WebSocket failures while
        the server is down). A missing favicon is always allowed."""
        patterns = [re.compile(p) for p in (*allow, r"favicon\.ico")]
        console = [e for e in self.console_errors if not any(p.search(e) for p in patterns)]
        assert self.page_errors == [], f"uncaught JavaScript errors: {self.page_errors}"
        assert console == [], f"console errors: {console}"

    def summary(self) -> str:
        return (f"dialogs: {self.dialogs}\npage errors: {self.page_errors}\n"
                f"console errors: {self.console_errors}")


@pytest.fixture(scope="module")
def playwright_instance():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:  # pragma: no cover - requirements-test.txt pins it
        _unavailable(f"playwright is not installed ({exc}); run ./scripts/test")
    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        yield playwright
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def browser(playwright_instance):
    """One headless Debian Chromium for the test module (see the module docstring)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium "
                     "(./scripts/test does it with apt-get as root)")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                  headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page_log(request) -> PageLog:
    log = PageLog()
    request.node.stash[_LOG_KEY] = log
    return log


@pytest.fixture
def new_page(browser, page_log, request, tmp_path):
    """Factory: ``new_page(viewport=None, **context_options) -> Page`` in a fresh
    context (1280x800 by default). Closed after the test."""
    contexts = []
    pages = request.node.stash.setdefault(_PAGES_KEY, [])

    def make(viewport: dict | None = None, **options):
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()

        def on_dialog(dialog):
            page_log.dialogs.append(f"{dialog.type}: {dialog.message}")
            try:
                dialog.dismiss()
            except Exception:  # the page may be gone already
                pass

        def on_console(msg):
            if msg.type == "error":
                where = msg.location.get("url", "") if msg.location else ""
                page_log.console_errors.append(f"{msg.text} ({where})" if where else msg.text)

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: page_log.page_errors.append(str(exc)))
        page.on("console", on_console)
        pages.append((page, tmp_path))
        return page

    yield make
    for context in contexts:
        try:
            context.close()
        except Exception:
            pass


@pytest.fixture
def page(new_page):
    """A 1280x800 page in a fresh browser context."""
    return new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, save a screenshot (and the HTML) of every open page of the test
    into its tmp dir, and add the paths and the page log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    lines = []
    for n, (page, tmp_path) in enumerate(item.stash.get(_PAGES_KEY, []), start=1):
        shot = Path(tmp_path) / f"failure-{n}.png"
        try:
            if page.is_closed():
                continue
            page.screenshot(path=str(shot), full_page=False, timeout=5_000)
            (Path(tmp_path) / f"failure-{n}.html").write_text(page.content(), encoding="utf-8")
            lines.append(f"page {n} ({page.url}): screenshot {shot}")
        except Exception as exc:
            lines.append(f"page {n}: no screenshot ({exc})")
    log = item.stash.get(_LOG_KEY, None)
    if log is not None:
        lines.append(log.summary())
    if lines:
        report.sections.append(("browser", "\n".join(lines)))
