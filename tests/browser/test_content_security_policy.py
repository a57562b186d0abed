"""The Content-Security-Policy of every page, in headless Chromium against the running
relay: each HTML response carries a strict policy (default-src 'self', no inline or
eval'd script), and the chat page (log in, subscribe, send, receive over the
WebSocket), the sign-up page, a throttled login and the admin (channel list, a
channel's page, an action's page) run under it without one violation. The browser
reports each violation as a ``securitypolicyviolation`` event, recorded here for every
document the page opens; it also logs each as a console error, which ``page_log``
catches. An inline script put into a page is refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Response, expect

from .test_chat_page import FORM_400, expect_live, expect_message, fresh_channel, login, post, subscribe

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The browser logs a form answered 429 as a failed load.
FORM_429 = (r"status of 429 .*/login/\)$",)
UNSAFE_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "http:", "https:", "blob:"}
REPORT_VIOLATIONS = """
window.__cspReports = [];
document.addEventListener('securitypolicyviolation', (e) => {
    const report = {directive: e.effectiveDirective, blocked: e.blockedURI, document: e.documentURI,
                    sample: e.sample};
    window.__cspReports.push(report);
    window.__cspViolation(report);
});
"""


@pytest.fixture(scope="module")
def relay_env():
    return {"RELAY_LOGIN_ACCOUNT_RATE": "2/1h"}


@dataclass
class PolicyWatch:
    """What one page met: the policy violations it reported and its HTML responses."""

    violations: list[dict] = field(default_factory=list)
    documents: list[Response] = field(default_factory=list)

    def paths(self) -> set[str]:
        return {urlsplit(r.url).path for r in self.documents}

    def assert_clean(self) -> None:
        """Every HTML response had a strict policy, and nothing violated it."""
        assert self.documents, "no page was loaded"
        for response in self.documents:
            assert_strict(response)
        assert self.violations == [], f"Content-Security-Policy violations: {self.violations}"


def watch(page: Page) -> PolicyWatch:
    """Record the page's violation reports (from every document it opens from now on)
    and its HTML responses."""
    seen = PolicyWatch()
    page.expose_binding("__cspViolation", lambda _source, report: seen.violations.append(report))
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("response", lambda r: seen.documents.append(r) if r.request.resource_type == "document"
            and not 300 <= r.status < 400 else None)
    return seen


def policy(response: Response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as {directive: [sources]}."""
    header = response.all_headers().get("content-security-policy")
    assert header, f"no Content-Security-Policy on {response.url} ({response.status})"
    parts = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in parts}


def assert_strict(response: Response) -> None:
    """default-src 'self'; no plugin, base or framing; scripts and styles from 'self'
    only (nothing inline, nothing eval'd, no other scheme)."""
    directives = policy(response)
    where = f"{response.url}: {directives}"
    assert directives.get("default-src") == ["'self'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert directives.get("base-uri") == ["'none'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    for sources in directives.values():
        assert not UNSAFE_SOURCES & set(sources), where


def test_chat_page_login_and_signup_run_under_a_strict_policy(relay, pb_user, new_page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("csp")
    earlier = post(relay, bob, channel, "from the history")
    page = new_page()
    seen = watch(page)
    page.goto(relay.http_url + "signup/")
    expect(page.locator("#signup-submit")).to_be_visible()
    login(page, relay, alice)  # the WebSocket connects: connect-src allows it
    subscribe(page, channel)
    expect_message(page, earlier, "Bob")
    page.locator("#composer").fill("sent under the policy")
    page.locator("#composer").press("Enter")
    mine = page.locator("#messages li.message", has_text="sent under the policy")
    expect(mine).to_have_count(1)
    live = post(relay, bob, channel, "received live")
    expect_message(page, live, "Bob")
    expect_live(page)
    assert {"/signup/", "/login/", "/"} <= seen.paths()
    seen.assert_clean()
    page_log.assert_no_js_errors()


def test_throttled_login_says_so_under_the_policy(relay, pb_user, new_page, page_log):
    carol = pb_user("Carol")
    page = new_page()
    seen = watch(page)
    page.goto(relay.http_url + "login/")
    for n in range(3):
        page.locator("#email").fill(carol.email)
        page.locator("#password").fill(f"wrong-{n}")
        page.locator("#login-submit").click()
        expect(page.locator(".form-error").first).to_be_visible()
    error = page.locator(".form-error").first
    expect(error).to_have_text(re.compile(r"Too many failed logins for this account; try again in \d+ minutes?\."))
    assert [r.status for r in seen.documents] == [200, 400, 400, 429]
    seen.assert_clean()
    page_log.assert_no_js_errors(allow=FORM_400 + FORM_429)


def test_admin_runs_under_a_strict_policy(relay, pb_user, new_page, page_log):
    bob = pb_user("Bob")
    channel = fresh_channel("cspadm")
    for text in ("one", "two <b>bold?</b>"):
        post(relay, bob, channel, text)
    relay.manage("channel", channel, "--access", "readonly", "--add-member", bob.id)
    username, password = f"staff-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    relay.manage("createsuperuser", "--noinput", "--username", username, "--email", f"{username}@example.com",
                 env={"DJANGO_SUPERUSER_PASSWORD": password})

    page = new_page()
    seen = watch(page)
    page.goto(relay.http_url + "admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    page.get_by_role("link", name="Channels").first.click()
    page.locator("#searchbar").fill(channel)
    page.locator("#searchbar").press("Enter")
    page.get_by_role("link", name=channel, exact=True).click()
    expect(page.get_by_text("Recent messages (newest first)")).to_be_visible()
    expect(page.get_by_text("two <b>bold?</b>")).to_be_visible()
    page.get_by_text("Add another member").click()  # the inline formset's script
    page.go_back()
    page.locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("replay_range")
    page.locator("button[name=index]").click()
    expect(page.get_by_role("button", name="Replay")).to_be_visible()
    page.goto(relay.http_url + "admin/messaging/channel/add/")
    page.goto(relay.http_url + "admin/messaging/subscription/")
    page.locator("#toggle-nav-sidebar").click()  # the sidebar's script
    assert {"/admin/login/", "/admin/messaging/channel/", "/admin/messaging/channel/add/"} <= seen.paths()
    assert any(re.fullmatch(r"/admin/messaging/channel/\d+/change/", p) for p in seen.paths())
    seen.assert_clean()
    page_log.assert_no_js_errors()


def test_a_script_put_into_a_page_does_not_run(relay, pb_user, new_page):
    alice = pb_user("Alice")
    page = new_page()
    seen = watch(page)
    login(page, relay, alice)
    assert_strict(seen.documents[-1])
    page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.__injected = true';
        document.body.appendChild(script);
        const img = document.createElement('img');
        img.setAttribute('onerror', 'window.__handler = true');
        img.src = '/static/relay/nowhere.png';
        document.body.appendChild(img);
    }""")
    page.wait_for_function("() => window.__cspReports.length >= 2")  # the error event came too
    assert page.evaluate("() => [window.__injected, window.__handler]") == [None, None]
    directives = {v["directive"] for v in page.evaluate("() => window.__cspReports")}
    assert directives == {"script-src-elem", "script-src-attr"}, seen.violations
