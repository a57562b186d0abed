"""The server-rendered chat page in headless Chromium, against the running relay
(daphne + two workers, real Redis/NATS/PocketBase). Alice uses the page; Bob posts
through the HTTP API with his Bearer token.

DOM contract used here: ``/login/`` (``#email``, ``#password``, ``#login-submit``,
``.form-error``), ``/signup/`` (``#name``, ``#email``, ``#password``,
``#signup-submit``); ``/``: ``#user-name``, ``#connection-state[data-state]``,
``#logout-button``, ``#subscribe-form`` > ``#channel-input`` + ``#subscribe-button``,
``#subscriptions li[data-channel]`` (``.channel-name``, ``.unread``,
``.unsubscribe``), ``#current-channel``, ``#messages li.message[data-id]``
(``.sender``, ``time[datetime]``, ``.text``) and ``#messages li.gap`` (missed messages
not loaded yet, with a "Show missed messages" button) inside ``#scroller``, ``#load-older``,
``#new-messages``, ``textarea#composer``, ``#send-button``, ``#notice``; the tab title
``(N) Chat · the relay`` with N unread messages.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from .conftest import DESKTOP, PHONE

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DOCS = Path(__file__).resolve().parents[2] / "docs"
TITLE = "Chat · the relay"
# While daphne is down the browser itself logs the failed WebSocket handshakes.
NETWORK_ERRORS = (r"WebSocket", r"ERR_CONNECTION_REFUSED", r"Failed to load resource")
# A form with errors is answered 400, which the browser logs as a failed load.
FORM_400 = (r"status of 400 .*/(login|signup)/\)$",)


# -- helpers ---------------------------------------------------------------------------
def fresh_channel(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def api_url(relay, channel: str) -> str:
    return f"{relay.http_url}api/channels/{channel}/messages"


def post(relay, user, channel: str, text: str, session=requests) -> dict:
    """Publish over the HTTP API as ``user``; returns the stored message."""
    r = session.post(api_url(relay, channel), json={"text": text}, headers=user.headers, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["message"]


def stored(relay, user, channel: str) -> list[dict]:
    r = requests.get(api_url(relay, channel), headers=user.headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def state(page: Page) -> Locator:
    return page.locator("#connection-state")


def expect_live(page: Page, timeout: float = 15_000) -> None:
    expect(state(page)).to_have_attribute("data-state", "live", timeout=timeout)


def login(page: Page, relay, user) -> None:
    """Log in through the form; ends on the chat page, connected."""
    page.goto(relay.http_url + "login/")
    page.locator("#email").fill(user.email)
    page.locator("#password").fill(user.password)
    page.locator("#login-submit").click()
    expect(page).to_have_url(relay.http_url)
    expect(page.locator("#user-name")).to_have_text(user.name)
    expect_live(page)


def sub_item(page: Page, channel: str) -> Locator:
    return page.locator(f'#subscriptions li[data-channel="{channel}"]')


def fill_field(locator: Locator, value: str, attempts: int = 3) -> None:
    """``fill`` and check that the text landed there: the page moves the focus to the
    composer when a subscription completes, which can race a test's next ``fill``."""
    for _ in range(attempts):
        locator.fill(value)
        if locator.input_value() == value:
            return
    expect(locator).to_have_value(value)


def subscribe(page: Page, channel: str) -> None:
    """Subscribe through the form; the channel becomes the current one."""
    fill_field(page.locator("#channel-input"), channel)
    page.locator("#subscribe-button").click()
    expect(sub_item(page, channel)).to_have_count(1)
    expect(page.locator("#current-channel")).to_contain_text(channel)


def message(page: Page, msg: dict | str) -> Locator:
    msg_id = msg if isinstance(msg, str) else msg["id"]
    return page.locator(f'#messages li.message[data-id="{msg_id}"]')


def message_ids(page: Page) -> list[str]:
    return page.locator("#messages li.message").evaluate_all("els => els.map(e => e.dataset.id)")


def expect_message(page: Page, msg: dict, sender: str) -> Locator:
    """``msg`` is shown exactly once, with ``sender`` and exactly its text."""
    li = message(page, msg)
    expect(li).to_have_count(1)
    expect(li.locator(".sender")).to_have_text(sender)
    shown = li.locator(".text").inner_text()
    assert shown == msg["text"], f"message {msg['id']} shows {shown!r}, sent {msg['text']!r}"
    return li


def expect_no_unread(item: Locator) -> None:
    """The ``.unread`` badge of a subscription is hidden or empty."""
    badge = item.locator(".unread")
    expect(badge).to_have_count(1)
    badge.page.wait_for_function(
        """(el) => {
            const s = getComputedStyle(el);
            const hidden = el.hidden || s.display === 'none' || s.visibility === 'hidden'
                || el.getClientRects().length === 0;
            return hidden || el.textContent.trim() === '';
        }""", arg=badge.element_handle(), timeout=15_000)


def expect_hidden_or_disabled(locator: Locator) -> None:
    if locator.count() == 0:
        return
    locator.page.wait_for_function(
        """(el) => !el || el.disabled || el.hidden || getComputedStyle(el).display === 'none'
                   || el.getClientRects().length === 0""",
        arg=locator.element_handle(), timeout=15_000)


def focus_by_tab(page: Page, element_id: str, presses: int = 40) -> None:
    """Press Tab until ``#element_id`` has the keyboard focus."""
    for _ in range(presses):
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} is not reachable with Tab in {presses} presses")


def fits_horizontally(locator: Locator, width: int) -> None:
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None, f"{locator} has no box"
    assert box["x"] >= -1 and box["x"] + box["width"] <= width + 1, \
        f"{locator} sticks out of the {width}px viewport: {box}"


def no_horizontal_scroll(page: Page) -> None:
    sw, iw = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sw <= iw, f"the page scrolls horizontally: scrollWidth {sw} > width {iw}"


def scroll_top(page: Page) -> float:
    return page.locator("#scroller").evaluate("e => e.scrollTop")


def expect_at_bottom(page: Page) -> None:
    page.wait_for_function(
        "() => { const s = document.getElementById('scroller');"
        " return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }", timeout=15_000)


KEEP_NODES_JS = "() => { window.keptNodes = [...document.querySelectorAll('#messages li.message')]; return window.keptNodes.length; }"
NODES_KEPT_JS = """() => window.keptNodes.filter(n => !n.isConnected
    || document.querySelector(`#messages li.message[data-id="${n.dataset.id}"]`) !== n).length"""


class Link:
    """The page's WebSockets, routed through Playwright to the relay, so that a test can
    drop the connection and keep the page offline while messages are published over
    HTTP. ``drop()`` closes the open connections; until ``restore()``, the page's
    reconnects are held open without reaching the relay (no welcome comes, the page
    waits); ``restore()`` closes those, and the page's next reconnect goes through."""

    def __init__(self, page: Page):
        self.up = True
        self.routes: list = []
        self.held: list = []
        page.route_web_socket(re.compile(r"/ws/$"), self._route)

    def _route(self, ws) -> None:
        if self.up:
            ws.connect_to_server()
            self.routes.append(ws)
        else:
            self.held.append(ws)

    def drop(self) -> None:
        self.up = False
        for ws in self.routes:
            ws.close()
        self.routes.clear()

    def restore(self) -> None:
        self.up = True
        for ws in self.held:
            ws.close()
        self.held.clear()


def restart_relay_web_stopped_first(relay, port: int):
    """Start daphne again on ``port`` in place of the stopped ``relay.web``
    (what ``relay.restart_web()`` does after its ``stop()``)."""
    new = relay.start_web(port=port)
    relay.webs.remove(new)
    relay.webs[0] = new
    return new


# -- sign in -----------------------------------------------------------------------------
def test_unauthenticated_chat_redirects_to_login(relay, page, page_log):
    page.goto(relay.http_url)
    expect(page).to_have_url(re.compile("^" + re.escape(relay.http_url + "login/")))
    expect(page.locator("#login-submit")).to_be_visible()
    expect(page.locator('a[href*="/signup/"]')).to_be_visible()
    page_log.assert_no_js_errors()


def test_wrong_password_shows_a_clear_error(relay, pb_user, page, page_log):
    alice = pb_user("Alice")
    page.goto(relay.http_url + "login/")
    page.locator("#email").fill(alice.email)
    page.locator("#password").fill(alice.password + "-wrong")
    page.locator("#login-submit").click()
    expect(page).to_have_url(re.compile("^" + re.escape(relay.http_url + "login/")))
    error = page.locator(".form-error").first
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile(r"password|invalid|incorrect|wrong", re.I))
    expect(page.locator("#password")).to_have_value("")  # never echoed back
    # and the chat stays closed
    page.goto(relay.http_url)
    expect(page).to_have_url(re.compile("^" + re.escape(relay.http_url + "login/")))
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors(allow=FORM_400)


def test_signup_lands_on_chat_then_logout(relay, pb_user, page, page_log):
    name = "Carol Signup"
    email = f"carol-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    page.goto(relay.http_url + "login/")
    page.locator('a[href*="/signup/"]').first.click()
    expect(page).to_have_url(relay.http_url + "signup/")
    page.locator("#name").fill(name)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#signup-submit").click()
    expect(page).to_have_url(relay.http_url)
    expect(page.locator("#user-name")).to_have_text(name)
    expect_live(page)

    page.locator("#logout-button").click()
    expect(page).to_have_url(re.compile("^" + re.escape(relay.http_url + "login/")))
    page.goto(relay.http_url)
    expect(page).to_have_url(re.compile("^" + re.escape(relay.http_url + "login/")))

    # the same email again: an error on the sign-up page, not a crash
    page.goto(relay.http_url + "signup/")
    page.locator("#name").fill(name)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#signup-submit").click()
    expect(page).to_have_url(relay.http_url + "signup/")
    expect(page.locator(".form-error").first).to_be_visible()

    # the new account logs in like any other
    page.goto(relay.http_url + "login/")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#login-submit").click()
    expect(page.locator("#user-name")).to_have_text(name)
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors(allow=FORM_400)


# -- the seed scenario -------------------------------------------------------------------
def test_history_then_live_message_without_reload(relay, pb_user, new_page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("seed")
    earlier = post(relay, bob, channel, "hello alice, are you there?")

    page = new_page(timezone_id="Asia/Kolkata", locale="en-GB")
    login(page, relay, alice)
    expect(state(page)).to_have_text(re.compile(r"\w"))  # a human text next to the state
    subscribe(page, channel)
    expect_message(page, earlier, "Bob")

    page.evaluate("() => { window.__sameDocument = true; }")
    later = post(relay, bob, channel, "yes, live now")
    expect_message(page, later, "Bob")
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert message_ids(page) == [earlier["id"], later["id"]]
    expect(state(page)).to_have_attribute("data-state", "live")

    # <time datetime> is the message's instant; the text is the local (Kolkata) time
    time_el = message(page, later).locator("time")
    machine = time_el.get_attribute("datetime")
    assert machine, "time element without a datetime attribute"
    kolkata = timezone(timedelta(hours=5, minutes=30))
    parsed = datetime.fromisoformat(machine.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=kolkata)
    sent = datetime.fromtimestamp(later["ts"] / 1e9, tz=timezone.utc)
    assert abs((parsed - sent).total_seconds()) < 1.0, (machine, sent)
    local = sent.astimezone(kolkata)
    hour12 = local.hour % 12 or 12
    expect(time_el).to_have_text(re.compile(
        rf"(^|\D)0?({local.hour}|{hour12})[:.]{local.minute:02d}(\D|$)"))
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors()


# -- rendering ---------------------------------------------------------------------------
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", '"><svg onload=alert(3)>']


def test_html_in_messages_and_names_is_shown_as_text(relay, pb_user, pb_admin, page, page_log):
    alice, bob, mallory = pb_user("Alice"), pb_user("Bob"), pb_user("Mallory")
    evil_name = "<img src=x onerror=alert(4)>"
    pb_admin.update_user(mallory.id, name=evil_name)
    channel = fresh_channel("xss")
    from_history = [post(relay, bob, channel, text) for text in XSS]
    login(page, relay, alice)
    subscribe(page, channel)
    live = [post(relay, bob, channel, text) for text in XSS]
    named = post(relay, mallory, channel, "hi from a funny name")
    sentinel = post(relay, bob, channel, "sentinel: everything above has rendered")

    for msg in [*from_history, *live]:
        expect_message(page, msg, "Bob")
    expect_message(page, named, evil_name)
    expect_message(page, sentinel, "Bob")
    # a channel name with HTML in the subscribe box changes nothing either
    fill_field(page.locator("#channel-input"), '"><img src=x onerror=alert(5)>')
    page.locator("#subscribe-button").click()
    bad = post(relay, bob, channel, "second sentinel")
    expect_message(page, bad, "Bob")

    expect(page.locator("#messages img, #messages script, #messages svg")).to_have_count(0)
    expect(page.locator('img[src="x"]')).to_have_count(0)
    expect(page.locator("#subscriptions li")).to_have_count(1)
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors()


def test_long_words_wrap_and_unicode_renders_exactly(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("text")
    login(page, relay, alice)
    subscribe(page, channel)
    texts = ["W" * 300, "👍🏽 שלום e\u0301", "👩‍👩‍👧 مرحبا (123) abc\tend", "x" * 80 + " " + "y" * 300]
    msgs = [post(relay, bob, channel, text) for text in texts]
    for msg in msgs:
        expect_message(page, msg, "Bob")
    pane = page.locator("#messages")
    sw, cw = pane.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert sw <= cw, f"#messages scrolls horizontally: scrollWidth {sw} > clientWidth {cw}"
    pane_box = pane.bounding_box()
    for msg in msgs:
        box = message(page, msg).locator(".text").bounding_box()
        assert box["x"] + box["width"] <= pane_box["x"] + pane_box["width"] + 1, (msg["text"][:20], box, pane_box)
    no_horizontal_scroll(page)
    # exactly as sent: no normalising (e + U+0301 stays two code points)
    shown = message(page, msgs[1]).locator(".text").evaluate("e => e.textContent")
    assert shown == "👍🏽 שלום e\u0301" and "\u00e9" not in shown
    page_log.assert_no_js_errors()


# -- composing ---------------------------------------------------------------------------
def test_enter_sends_shift_enter_adds_a_line(relay, pb_user, page, page_log):
    alice = pb_user("Alice")
    channel = fresh_channel("compose")
    login(page, relay, alice)
    subscribe(page, channel)
    composer = page.locator("textarea#composer")
    composer.click()
    composer.press_sequentially("line one")
    page.keyboard.press("Shift+Enter")
    composer.press_sequentially("line two")
    expect(composer).to_have_value("line one\nline two")
    expect(page.locator("#messages li.message")).to_have_count(0)

    page.keyboard.press("Enter")
    first = page.locator("#messages li.message")
    expect(first).to_have_count(1)
    expect(first.locator(".sender")).to_have_text("Alice")
    assert first.locator(".text").inner_text() == "line one\nline two"
    expect(composer).to_have_value("")

    page.keyboard.press("Enter")  # empty: sends nothing
    composer.fill("with the button")
    page.locator("#send-button").click()
    expect(page.locator("#messages li.message")).to_have_count(2)
    expect(composer).to_have_value("")
    texts = [m["text"] for m in stored(relay, alice, channel)]
    assert texts == ["line one\nline two", "with the button"]
    ids = message_ids(page)
    assert ids == [m["id"] for m in stored(relay, alice, channel)]  # once each, in order
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors()


# -- several channels ----------------------------------------------------------------------
def test_unread_badge_counts_and_clears(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    a, b = fresh_channel("a"), fresh_channel("b")
    login(page, relay, alice)
    subscribe(page, a)
    subscribe(page, b)  # b is in view
    expect_no_unread(sub_item(page, a))

    first = post(relay, bob, a, "psst, over here")
    expect(sub_item(page, a).locator(".unread")).to_have_text("1")
    second = post(relay, bob, a, "still over here")
    expect(sub_item(page, a).locator(".unread")).to_have_text("2")
    in_view = post(relay, bob, b, "in view")
    expect_message(page, in_view, "Bob")
    expect_no_unread(sub_item(page, b))
    expect(message(page, first)).to_have_count(0)  # not mixed into b's pane

    sub_item(page, a).locator(".channel-name").click()
    expect(page.locator("#current-channel")).to_contain_text(a)
    expect_message(page, first, "Bob")
    expect_message(page, second, "Bob")
    expect(message(page, in_view)).to_have_count(0)
    expect_no_unread(sub_item(page, a))
    page_log.assert_no_js_errors()


FIRST_VIEW = 150  # what the page shows of a channel at first: subscribe 100 + one older page of 50
OLDER_TOTAL = 260


def test_load_older_pages_back_without_duplicates(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("older")
    with requests.Session() as session:
        msgs = [post(relay, bob, channel, f"message {i:03d}", session=session)
                for i in range(OLDER_TOTAL)]
    login(page, relay, alice)
    subscribe(page, channel)
    expect_message(page, msgs[-1], "Bob")
    # The older page comes after the subscribe reply: wait for both.
    expect(page.locator("#messages li.message")).to_have_count(FIRST_VIEW)
    ids = message_ids(page)
    assert ids == [m["id"] for m in msgs[-len(ids):]], "the first page is not the newest, in order"

    load = page.locator("#load-older")
    expect(load).to_be_visible()
    expect(load).to_be_enabled()
    # Prepending a page keeps what the reader looks at where it was, in the same nodes.
    load.scroll_into_view_if_needed()
    assert page.evaluate(KEEP_NODES_JS) == len(ids)
    y_before = message(page, ids[0]).bounding_box()["y"]
    load.click()
    expect(page.locator("#messages li.message")).not_to_have_count(len(ids))
    assert abs(message(page, ids[0]).bounding_box()["y"] - y_before) <= 1, "the older page moved the view"
    assert page.evaluate(NODES_KEPT_JS) == 0, "loading older messages replaced the shown ones"
    ids = message_ids(page)
    clicks = 1
    while message(page, msgs[0]).count() == 0:
        assert clicks < 10, f"still no oldest message after {clicks} clicks ({len(ids)} shown)"
        shown = len(ids)
        load.click()
        clicks += 1
        expect(page.locator("#messages li.message")).not_to_have_count(shown)
        ids = message_ids(page)
        assert len(ids) > shown
    expect_message(page, msgs[0], "Bob")
    ids = message_ids(page)
    assert len(ids) == len(set(ids)), "duplicate data-id in #messages"
    assert ids == [m["id"] for m in msgs], "not every message once, oldest first"
    expect_hidden_or_disabled(load)

    live = post(relay, bob, channel, "and one more, live")
    expect_message(page, live, "Bob")
    assert message_ids(page) == [*(m["id"] for m in msgs), live["id"]]
    page_log.assert_no_js_errors()


def test_new_messages_keep_a_scrolled_up_reader_in_place(relay, pb_user, page, page_log):
    """Scrolled up, the view stays put, the shown nodes stay, and a button counts what
    arrived below; it jumps to the newest. At the bottom the view follows."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("scroll")
    with requests.Session() as session:
        history = [post(relay, bob, channel, f"history {i:02d}", session=session) for i in range(40)]
    login(page, relay, alice)
    subscribe(page, channel)
    expect_message(page, history[-1], "Bob")
    expect_at_bottom(page)
    marker = page.locator("#new-messages")
    expect(marker).to_be_hidden()

    page.locator("#scroller").evaluate("e => { e.scrollTop = 300; }")
    assert scroll_top(page) == 300
    assert page.evaluate(KEEP_NODES_JS) == len(history)
    arrived = [post(relay, bob, channel, f"while scrolled up {i}") for i in range(3)]
    for msg in arrived:
        expect_message(page, msg, "Bob")
    assert scroll_top(page) == 300, "the view moved while the reader was scrolled up"
    assert page.evaluate(NODES_KEPT_JS) == 0, "new messages replaced the shown ones"
    expect(marker).to_be_visible()
    expect(marker).to_have_text(re.compile(r"^3 new messages\b"))
    expect(page).to_have_title(f"(3) {TITLE}")
    expect(message(page, arrived[-1])).not_to_be_in_viewport()

    marker.click()
    expect_at_bottom(page)
    expect(message(page, arrived[-1])).to_be_in_viewport()
    expect(marker).to_be_hidden()
    expect(page).to_have_title(TITLE)

    followed = post(relay, bob, channel, "at the bottom: followed")
    expect_message(page, followed, "Bob")
    expect_at_bottom(page)
    expect(message(page, followed)).to_be_in_viewport()
    expect(marker).to_be_hidden()
    expect(page).to_have_title(TITLE)
    assert page.evaluate(NODES_KEPT_JS) == 0
    page_log.assert_no_js_errors()


def test_unread_counts_survive_closing_the_page_and_show_in_the_title(relay, pb_user, page, page_log):
    """A message delivered to the open page but never looked at, and messages sent while
    the page was closed, are unread after reopening: in the badge and the tab title."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    # welcome lists subscriptions by name: `first` is in view after reopening.
    first, later = fresh_channel("a-first"), fresh_channel("z-later")
    login(page, relay, alice)
    subscribe(page, later)
    subscribe(page, first)
    expect(page).to_have_title(TITLE)
    delivered = post(relay, bob, later, "delivered to the open page, never looked at")
    expect(sub_item(page, later).locator(".unread")).to_have_text("1")
    expect(page).to_have_title(f"(1) {TITLE}")

    page.goto("about:blank")
    away = [post(relay, bob, later, f"sent while alice was away {i}") for i in range(2)]
    in_view = post(relay, bob, first, "in the channel that opens first")
    page.goto(relay.http_url)
    expect_live(page)
    expect(page.locator("#current-channel")).to_contain_text(first)
    expect_message(page, in_view, "Bob")
    expect(sub_item(page, later).locator(".unread")).to_have_text("3")
    expect(page).to_have_title(f"(3) {TITLE}")  # `in_view` is read: it is on screen

    sub_item(page, later).locator(".channel-name").click()
    for msg in [delivered, *away]:
        expect_message(page, msg, "Bob")
    expect_no_unread(sub_item(page, later))
    expect(page).to_have_title(TITLE)

    page.reload()
    expect_live(page)
    expect(sub_item(page, later)).to_have_count(1)
    expect_message(page, in_view, "Bob")
    expect_no_unread(sub_item(page, later))
    expect(page).to_have_title(TITLE)
    page_log.assert_no_js_errors()


def test_subscriptions_and_missed_messages_survive_a_reload(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    a, b = fresh_channel("keep-a"), fresh_channel("keep-b")
    login(page, relay, alice)
    subscribe(page, a)
    subscribe(page, b)
    seen = post(relay, bob, a, "seen before leaving")
    expect(sub_item(page, a).locator(".unread")).to_have_text("1")

    page.goto("about:blank")
    missed = post(relay, bob, a, "sent while alice was away")
    page.goto(relay.http_url)
    expect_live(page)
    expect(sub_item(page, a)).to_have_count(1)
    expect(sub_item(page, b)).to_have_count(1)
    expect(page.locator("#subscriptions li")).to_have_count(2)
    sub_item(page, a).locator(".channel-name").click()
    expect(page.locator("#current-channel")).to_contain_text(a)
    expect_message(page, seen, "Bob")
    expect_message(page, missed, "Bob")
    live = post(relay, bob, a, "live after the reload")
    expect_message(page, live, "Bob")
    assert message_ids(page) == [seen["id"], missed["id"], live["id"]]
    page_log.assert_no_js_errors()


def test_unsubscribe_removes_the_channel(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    a, b = fresh_channel("stay"), fresh_channel("leave")
    login(page, relay, alice)
    subscribe(page, a)
    subscribe(page, b)
    sub_item(page, b).locator(".unsubscribe").click()
    expect(sub_item(page, b)).to_have_count(0)
    expect(sub_item(page, a)).to_have_count(1)
    post(relay, bob, b, "nobody here any more")
    in_a = post(relay, bob, a, "but here")
    sub_item(page, a).locator(".channel-name").click()
    expect_message(page, in_a, "Bob")
    expect(sub_item(page, b)).to_have_count(0)
    page.reload()
    expect_live(page)
    expect(sub_item(page, a)).to_have_count(1)
    expect(sub_item(page, b)).to_have_count(0)
    page_log.assert_no_js_errors()


# -- layout and access ---------------------------------------------------------------------
def test_phone_width_subscribe_and_send(relay, pb_user, new_page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("phone")
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    login(page, relay, alice)
    no_horizontal_scroll(page)
    for selector in ("#subscribe-form", "#channel-input", "#subscribe-button"):
        expect(page.locator(selector)).to_be_visible()
        fits_horizontally(page.locator(selector), PHONE["width"])
    subscribe(page, channel)
    from_bob = post(relay, bob, channel, "hi from a phone-sized test " + "z" * 120)
    expect_message(page, from_bob, "Bob")
    for selector in ("#subscriptions", "#composer", "#send-button", "#messages"):
        expect(page.locator(selector)).to_be_visible()
        fits_horizontally(page.locator(selector), PHONE["width"])
    page.locator("#composer").fill("sent from the phone")
    page.locator("#send-button").tap()
    mine = page.locator("#messages li.message", has_text="sent from the phone")
    expect(mine).to_have_count(1)
    expect(mine.locator(".sender")).to_have_text("Alice")
    expect(message(page, from_bob)).to_be_visible()
    no_horizontal_scroll(page)
    page_log.assert_no_js_errors()


UNLABELLED_JS = """() => Array.from(document.querySelectorAll(
        'input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select'))
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
    .map(el => el.id || el.name || el.outerHTML)"""


def test_labels_and_keyboard_only_use(relay, pb_user, page, page_log):
    alice = pb_user("Alice")
    page.goto(relay.http_url + "signup/")
    assert page.evaluate(UNLABELLED_JS) == []
    expect(page.get_by_label(re.compile(r"name", re.I))).to_have_id("name")
    expect(page.get_by_label(re.compile(r"e-?mail", re.I))).to_have_id("email")
    expect(page.get_by_label(re.compile(r"password", re.I))).to_have_id("password")

    page.goto(relay.http_url + "login/")
    assert page.evaluate(UNLABELLED_JS) == []
    page.get_by_label(re.compile(r"e-?mail", re.I)).fill(alice.email)
    page.get_by_label(re.compile(r"password", re.I)).fill(alice.password)
    page.keyboard.press("Enter")  # submits the form
    expect(page).to_have_url(relay.http_url)
    expect_live(page)
    assert page.evaluate(UNLABELLED_JS) == []
    expect(page.get_by_label("Channel", exact=True)).to_have_id("channel-input")
    expect(page.get_by_label("Message", exact=True)).to_have_id("composer")

    channel = fresh_channel("keys")
    focus_by_tab(page, "channel-input")
    page.keyboard.type(channel)
    page.keyboard.press("Enter")
    expect(sub_item(page, channel)).to_have_count(1)
    expect(page.locator("#current-channel")).to_contain_text(channel)
    focus_by_tab(page, "composer")
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    mine = page.locator("#messages li.message")
    expect(mine).to_have_count(1)
    expect(mine.locator(".text")).to_have_text("typed without a mouse")
    page_log.assert_no_js_errors()


# -- reconnecting --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_reconnects_after_daphne_restart_and_misses_nothing(relay, pb_user, page, page_log):
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("reconnect")
    login(page, relay, alice)
    subscribe(page, channel)
    first = post(relay, bob, channel, "before the restart")
    expect_message(page, first, "Bob")

    port = relay.web.port
    racing = [post(relay, bob, channel, f"right before the stop {i}") for i in range(2)]
    relay.web.stop()
    try:
        expect(state(page)).not_to_have_attribute("data-state", "live", timeout=30_000)
        restart_relay_web_stopped_first(relay, port)
        while_down = [post(relay, bob, channel, f"while the page was away {i}") for i in range(3)]
    finally:
        if not relay.web.running():
            restart_relay_web_stopped_first(relay, port)
    expect_live(page, timeout=60_000)
    for msg in [*racing, *while_down]:
        expect_message(page, msg, "Bob")
    after = post(relay, bob, channel, "after the reconnect")
    expect_message(page, after, "Bob")
    ids = message_ids(page)
    assert ids == [m["id"] for m in [first, *racing, *while_down, after]], ids
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors(allow=NETWORK_ERRORS)


RESUME_LIMIT = 100  # chat.js: a resuming subscribe asks for the newest 100 after its position
MISSED = 250  # more than one resuming reply carries: 150 of them only by filling the gap


def publish_many(relay, user, channel: str, prefix: str, n: int) -> list[dict]:
    with requests.Session() as session:
        return [post(relay, user, channel, f"{prefix} {i:04d}", session=session) for i in range(n)]


def miss_while_scrolled_up(relay, page: Page, alice, bob, channel: str, missed: int):
    """Alice's page shows 30 messages of Bob's in ``channel`` and she scrolls up; the
    connection drops, Bob publishes ``missed`` more over HTTP, the page is live again.
    Returns the 30, the missed ones, the message at the top of the view and its y then."""
    link = Link(page)
    login(page, relay, alice)
    subscribe(page, channel)
    before = publish_many(relay, bob, channel, "before the drop", 30)
    expect_message(page, before[-1], "Bob")
    expect_at_bottom(page)
    expect(page).to_have_title(TITLE)
    page.locator("#scroller").evaluate("e => { e.scrollTop = 300; }")
    top = message(page, before[8])
    y_before = top.bounding_box()["y"]

    link.drop()
    expect(state(page)).not_to_have_attribute("data-state", "live")
    gone = publish_many(relay, bob, channel, "while the page was offline", missed)
    link.restore()
    expect_live(page)
    return before, gone, top, y_before


def test_resume_after_more_than_a_reply_was_missed_fills_the_gap(relay, pb_user, page, page_log):
    """The connection drops while a reader is scrolled up; more messages than the resuming
    subscribe's limit are published meanwhile (the relay answers the newest 100 and
    `truncated`). After the reconnect every message is shown exactly once, in order, the
    reader has not moved, and all the missed messages count as unread."""
    alice, bob, channel = pb_user("Alice"), pb_user("Bob"), fresh_channel("gap")
    before, missed, top, y_before = miss_while_scrolled_up(relay, page, alice, bob, channel, MISSED)
    expect(page.locator("#messages li.message")).to_have_count(len(before) + MISSED)
    assert message_ids(page) == [m["id"] for m in [*before, *missed]], "not every message once, in order"
    assert abs(top.bounding_box()["y"] - y_before) <= 1, "filling the gap moved a scrolled-up reader"
    expect(page.locator("#new-messages")).to_have_text(re.compile(rf"^{MISSED} new messages\b"))
    expect(page).to_have_title(f"({MISSED}) {TITLE}")
    expect(page.locator("#messages li.gap")).to_have_count(0)

    after = post(relay, bob, channel, "after the reconnect")
    expect_message(page, after, "Bob")
    assert message_ids(page) == [m["id"] for m in [*before, *missed, after]]
    page_log.assert_no_js_errors()


GAP_FILL = 500  # chat.js: a new gap gets up to 500 from each end by itself
GAP_PAGE = 200  # chat.js: one click on "Show missed messages" loads up to 200 more
HUGE = RESUME_LIMIT + 2 * GAP_FILL + GAP_PAGE + 50  # two clicks left to fill


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_huge_gap_loads_its_ends_and_the_rest_on_demand(relay, pb_user, page, page_log):
    """More missed messages than the page loads by itself: it shows the newest, the ones
    right after the last message it showed, and between them a "Show missed messages"
    button, which loads the rest forward in order. Meanwhile the unread count says it is
    a lower bound ("N+"), and the reader stays where they are."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    before, missed, top, y_before = miss_while_scrolled_up(relay, page, alice, bob, fresh_channel("huge"), HUGE)
    loaded = 2 * GAP_FILL + RESUME_LIMIT
    expect(page.locator("#messages li.message")).to_have_count(len(before) + loaded)
    expected = [*before, *missed[:GAP_FILL], *missed[-GAP_FILL - RESUME_LIMIT:]]
    assert message_ids(page) == [m["id"] for m in expected]
    gap = page.locator("#messages li.gap")
    expect(gap).to_have_count(1)
    # The button sits in the gap: after the first part, before the newest part.
    place = gap.evaluate("g => [g.previousElementSibling.dataset.id, g.nextElementSibling.dataset.id]")
    assert place == [missed[GAP_FILL - 1]["id"], missed[-GAP_FILL - RESUME_LIMIT]["id"]]
    assert abs(top.bounding_box()["y"] - y_before) <= 1, "filling the gap moved a scrolled-up reader"
    expect(page).to_have_title(f"({loaded}+) {TITLE}")
    expect(page.locator("#new-messages")).to_have_text(re.compile(rf"^{loaded}\+ new messages\b"))

    button = gap.get_by_role("button", name="Show missed messages")
    button.scroll_into_view_if_needed()
    button.click()
    expect(page.locator("#messages li.message")).to_have_count(len(before) + loaded + GAP_PAGE)
    expect(gap).to_have_count(1)
    button.scroll_into_view_if_needed()
    button.click()
    expect(page.locator("#messages li.message")).to_have_count(len(before) + HUGE)
    expect(gap).to_have_count(0)
    ids = message_ids(page)
    assert ids == [m["id"] for m in [*before, *missed]], "not every message once, in order"
    expect(page).not_to_have_title(re.compile(r"\+"))
    page_log.assert_no_js_errors()


# -- screenshots for the docs ----------------------------------------------------------------
@pytest.mark.screenshots
def test_screenshots_for_the_docs(relay, pb_user, new_page, page_log, tmp_path):
    """screenshot-desktop.png (1280x800) and screenshot-phone.png (390x844), written into
    docs/ when RELAY_WRITE_SCREENSHOTS=1 (to refresh the README's pictures), else into
    the test's temporary folder. No emoji in the texts: rendering depends on fonts."""
    shots = DOCS if os.environ.get("RELAY_WRITE_SCREENSHOTS") == "1" else tmp_path
    alice, bob = pb_user("Alice"), pb_user("Bob")
    general, random = "general", "random"
    post(relay, bob, general, "Morning! Did the release go out last night?")
    page = new_page(viewport=DESKTOP)
    login(page, relay, alice)
    subscribe(page, random)
    subscribe(page, general)
    composer = page.locator("#composer")

    def say(text: str) -> None:
        composer.fill(text)
        composer.press("Enter")
        expect(page.locator("#messages li.message", has_text=text)).to_have_count(1)
        expect(composer).to_have_value("")

    say("It did! Shipped at 9:40, all checks green.")
    reply = post(relay, bob, general, "Nice. The reconnect logic held up through the restart too.")
    expect_message(page, reply, "Bob")
    say("Lunch at 12:30 to celebrate?")
    last = post(relay, bob, general, "Count me in!")
    expect_message(page, last, "Bob")
    post(relay, bob, random, "Board game night on Friday?")
    post(relay, bob, random, "I'll bring snacks.")
    expect(sub_item(page, random).locator(".unread")).to_have_text("2")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "screenshot-desktop.png"))

    phone = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    login(phone, relay, alice)
    if sub_item(phone, general).count() == 1:
        sub_item(phone, general).locator(".channel-name").click()
    else:
        subscribe(phone, general)
    expect(phone.locator("#current-channel")).to_contain_text(general)
    expect_message(phone, last, "Bob")
    post(relay, bob, random, "Also: who has the projector cable?")
    expect(sub_item(phone, random).locator(".unread")).not_to_have_text(re.compile(r"^\s*$"))
    phone.evaluate("() => document.activeElement && document.activeElement.blur()")
    phone.screenshot(path=str(shots / "screenshot-phone.png"))
    assert all((shots / f"screenshot-{kind}.png").stat().st_size > 10_000 for kind in ("desktop", "phone"))
    page_log.assert_no_dialogs()
    page_log.assert_no_js_errors()
