"""The Django admin in headless Chromium, against the running relay: a staff user (a
Django superuser made with ``createsuperuser`` in the relay's own database) looks at a
channel that Alice subscribed to on the chat page and Bob wrote to over HTTP.

Admin DOM used here (Django's): ``#result_list`` (the change list), ``select[name=action]``
and its Go button, ``.messagelist li``, ``#members-group`` (the members inline, heading
``#members-heading``), the page's "Subscribers and their cursors" table; the action
pages' form.
"""

from __future__ import annotations

import re
import secrets
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from .test_chat_page import expect_message, fresh_channel, login, post, subscribe

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHANGELIST = "admin/messaging/channel/"

# Rendered lines of an element's text: distinct tops of its text's line boxes.
LINES_JS = """(el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
}"""
# The colour Django's admin uses for dangerous buttons, resolved to rgb().
DANGER_JS = """() => {
    const probe = document.createElement('div');
    probe.style.background = 'var(--delete-button-bg)';
    document.body.append(probe);
    const colour = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return colour;
}"""


@pytest.fixture(scope="module")
def staff(relay) -> tuple[str, str]:
    """(username, password) of a superuser of the module's relay."""
    password = secrets.token_urlsafe(16)
    relay.manage("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com",
                 env={"DJANGO_SUPERUSER_PASSWORD": password})
    return "ops", password


@pytest.fixture
def channel_in_use(relay, pb_user, new_page):
    """A lowercase channel that Alice subscribed to on the chat page (her page stays
    open) and Bob wrote two messages to; Alice is also a listed member."""
    alice, bob = pb_user("Alice"), pb_user("Bob")
    channel = fresh_channel("channel")
    chat = new_page()
    login(chat, relay, alice)
    subscribe(chat, channel)
    for text in ("first note", "second note"):
        expect_message(chat, post(relay, bob, channel, text), "Bob")
    relay.manage("channel", channel, "--add-member", alice.id)
    return channel, alice, bob


def admin_page(new_page, relay, staff) -> Page:
    page = new_page()
    page.goto(relay.http_url + "admin/login/?next=/admin/")
    page.locator("#id_username").fill(staff[0])
    page.locator("#id_password").fill(staff[1])
    page.locator("#login-form [type=submit]").click()
    expect(page).to_have_url(relay.http_url + "admin/")
    return page


def column(page: Page, header: str) -> Locator:
    """The change list's cells (first row) under the column headed ``header``."""
    index = page.locator("#result_list thead th").evaluate_all(
        "(ths, h) => ths.findIndex(th => th.textContent.trim().toLowerCase() === h.toLowerCase())", header)
    assert index >= 0, f"no column {header!r}"
    return page.locator("#result_list tbody tr").first.locator("th, td").nth(index)


def open_channel(page: Page, relay, channel: str) -> None:
    page.goto(f"{relay.http_url}{CHANGELIST}?q={channel}")
    page.locator("#result_list tbody tr").first.get_by_role("link", name=channel, exact=True).click()
    expect(page.locator("h1")).to_be_visible()


def run_action(page: Page, relay, channel: str, action: str) -> None:
    """Select ``channel`` in the change list and run ``action`` up to its form page."""
    page.goto(f"{relay.http_url}{CHANGELIST}?q={channel}")
    page.locator("#result_list tbody tr").first.locator("input.action-select").check()
    page.locator("select[name=action]").select_option(action)
    page.locator("button[name=index]").first.click()
    expect(page.locator("#content form")).to_be_visible()


def test_channel_list_fits_with_short_access_values(relay, staff, channel_in_use, new_page, page_log, tmp_path):
    channel, _, _ = channel_in_use
    page = admin_page(new_page, relay, staff)
    page.goto(f"{relay.http_url}{CHANGELIST}?q={channel}")
    page.screenshot(path=str(tmp_path / "admin-changelist.png"), full_page=True)
    access = column(page, "access")
    expect(access).to_have_text("open")
    assert access.evaluate(LINES_JS) == 1, "the access column wraps"
    # At 1280 px, beside the navigation and the filters, the whole row is readable:
    # no cell over two lines, no column cut off.
    cells = page.locator("#result_list tbody tr").first.locator("th, td")
    lines = {cells.nth(i).text_content().strip(): cells.nth(i).evaluate(LINES_JS) for i in range(cells.count())}
    assert all(n <= 2 for n in lines.values()), f"change list cells wrap (lines per cell): {lines}"
    clipped = page.locator("#changelist .results").evaluate("e => e.scrollWidth - e.clientWidth")
    assert clipped <= 0, f"the change list is {clipped} px wider than its box"
    filters = page.locator("#changelist-filter")
    for value in ("open", "members", "readonly"):
        expect(filters.get_by_role("link", name=value, exact=True)).to_have_count(1)
    page_log.assert_no_js_errors()


def test_channel_page_names_members_and_subscribers(relay, staff, channel_in_use, new_page, page_log, tmp_path):
    channel, alice, _ = channel_in_use
    page = admin_page(new_page, relay, staff)
    open_channel(page, relay, channel)
    # The SQL mirror of subscriptions (where names are kept) is written a moment after
    # the subscribe: reload until Alice is listed.
    subscribers = page.locator("fieldset.module", has=page.get_by_role("heading", name="Subscribers and their cursors"))
    row = subscribers.locator("tbody tr", has_text=alice.id)
    deadline = time.monotonic() + 15
    while row.count() == 0 and time.monotonic() < deadline:
        page.reload()
    expect(row).to_have_count(1)
    expect(row.locator("td").first).to_have_text("Alice")

    heading = page.locator("#members-heading")
    assert heading.text_content().strip() == "Members", heading.text_content()
    members = page.locator("#members-group")
    expect(members.locator("thead")).to_contain_text("PocketBase user id")
    member = members.locator("tbody tr.has_original")
    expect(member).to_have_count(1)
    expect(member.locator("input[name$='-userid']")).to_have_value(alice.id)
    expect(member).to_contain_text("Alice")
    page.screenshot(path=str(tmp_path / "admin-channel.png"), full_page=True)
    page_log.assert_no_js_errors()


def test_action_messages_keep_the_channel_name_as_written(relay, staff, channel_in_use, new_page, page_log):
    channel, _, _ = channel_in_use
    assert channel[0].islower()
    page = admin_page(new_page, relay, staff)
    run_action(page, relay, channel, "replay_range")
    page.locator("#id_since").fill("1h")
    page.locator("#content form [type=submit]").click()
    done = page.locator(".messagelist li.success")
    expect(done).to_have_count(1)
    expect(done).to_have_text(f"Channel “{channel}”: replayed 2 messages.")
    page_log.assert_no_js_errors()


def test_destructive_actions_confirm_with_a_danger_button(relay, staff, channel_in_use, new_page,
                                                          page_log, tmp_path):
    channel, _, _ = channel_in_use
    page = admin_page(new_page, relay, staff)
    run_action(page, relay, channel, "replay_range")
    danger = page.evaluate(DANGER_JS)
    replay = page.locator("#content form [type=submit]")
    assert replay.evaluate("e => getComputedStyle(e).backgroundColor") != danger, "replaying is not dangerous"

    for action, label in (("trim_history", "Trim"), ("delete_history", "delete")):
        run_action(page, relay, channel, action)
        button = page.locator("#content form [type=submit]")
        expect(button).to_have_value(re.compile(label, re.I))
        colour = button.evaluate("e => getComputedStyle(e).backgroundColor")
        page.screenshot(path=str(tmp_path / f"admin-{action}.png"))
        assert colour == danger, f"{action}: the button is {colour}, not the danger colour {danger}"
        expect(page.locator("#content form a.cancel-link")).to_be_visible()

    button.click()
    expect(page.locator(".messagelist li.success")).to_have_text(f"Channel “{channel}”: deleted 2 messages.")
    page_log.assert_no_js_errors()
