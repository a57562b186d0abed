"""The page's login and sign-up throttles against the running relay (daphne on real
Redis and PocketBase): wrong passwords per account and per client address, sign-ups per
client address, 429 with `Retry-After` and the wait on the form.

Each test speaks from client addresses of its own: the relay listens on 127.0.0.1 and
the tests connect from other loopback addresses (127.0.N.M), which the kernel routes
to it as distinct TCP peers, so the relay sees different client addresses for real
(no header it would have to trust). django-ratelimit's windows are fixed, so a burst
that straddles a window's end may pass up to twice a limit: the counts below allow it.
"""
from __future__ import annotations

import itertools
import re
import time
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

pytestmark = pytest.mark.e2e

ACCOUNT_LIMIT, IP_LIMIT, SIGNUP_LIMIT = 3, 6, 2
RATES = {"RELAY_LOGIN_ACCOUNT_RATE": f"{ACCOUNT_LIMIT}/1h", "RELAY_LOGIN_IP_RATE": f"{IP_LIMIT}/1h",
         "RELAY_SIGNUP_IP_RATE": f"{SIGNUP_LIMIT}/1h"}
WRONG = "Wrong email or password."
MAX_TRIES = 40  # attempts before a test gives up waiting for its 429
_addresses = (f"127.0.{a}.{b}" for a in itertools.count(1) for b in range(1, 255))


@pytest.fixture(scope="module")
def relay_env():
    return RATES


class FromAddress(HTTPAdapter):
    """Connects from the local address `ip` (any of 127.0.0.0/8 on Linux's loopback)."""

    def __init__(self, ip: str):
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.ip, 0)
        super().init_poolmanager(*args, **kwargs)


class Browser:
    """A cookie-keeping HTTP client of the page's forms from its own client address."""

    def __init__(self, relay):
        self.relay = relay
        self.ip = next(_addresses)
        self.http = requests.Session()
        self.http.mount("http://", FromAddress(self.ip))

    def post_form(self, path: str, fields: dict, headers: dict | None = None) -> requests.Response:
        """GET the form (for its CSRF cookie), then POST `fields`; redirects not followed."""
        url = self.relay.http_url + path
        self.http.get(url, timeout=10).raise_for_status()
        token = self.http.cookies["csrftoken"]
        return self.http.post(url, data={**fields, "csrfmiddlewaretoken": token}, headers=headers,
                              allow_redirects=False, timeout=10)

    def login(self, email: str, password: str, **kwargs) -> requests.Response:
        return self.post_form("login/", {"email": email, "password": password}, **kwargs)

    def signup(self, email: str, name: str = "Signer") -> requests.Response:
        return self.post_form("signup/", {"name": name, "email": email, "password": "pw-" + uuid.uuid4().hex})


def logged_in(response: requests.Response) -> bool:
    return response.status_code == 302 and response.headers["Location"] == "/"


def throttled(response: requests.Response, what: str) -> bool:
    """A 429 whose form says what was counted and how long to wait, with `Retry-After`."""
    if response.status_code != 429:
        return False
    assert re.search(rf"Too many {what}; try again in \d+ (second|minute)s?\.", response.text), response.text
    assert 0 < int(response.headers["Retry-After"]) <= 3601
    return True


def until_throttled(attempt, what: str) -> tuple[int, requests.Response]:
    """Call `attempt(n)` (n = 0, 1, ...) until it answers 429 about `what`; returns how
    many attempts got through first (each a 400 with the wrong-password error) and the 429."""
    for n in range(MAX_TRIES):
        response = attempt(n)
        if throttled(response, what):
            return n, response
        assert response.status_code == 400 and WRONG in response.text, (n, response.status_code)
    raise AssertionError(f"{MAX_TRIES} attempts and no 429 about {what}")


def fresh_email() -> str:
    return f"nobody-{uuid.uuid4().hex[:10]}@example.com"


def test_wrong_passwords_for_one_account_get_429_then_even_the_right_one(relay, pb_user):
    alice = pb_user("Alice")
    page = Browser(relay)
    # The account is the email in any case.
    spellings = [alice.email, alice.email.upper(), alice.email.capitalize()]
    passed, _ = until_throttled(lambda n: page.login(spellings[n % 3], f"wrong-{n}"), "failed logins for this account")
    assert ACCOUNT_LIMIT <= passed <= 2 * ACCOUNT_LIMIT
    assert throttled(page.login(alice.email, alice.password), "failed logins for this account")
    assert page.http.get(relay.http_url, allow_redirects=False, timeout=10).status_code == 302  # not logged in


def test_the_account_limit_holds_across_client_addresses(relay, pb_user):
    bob, carol = pb_user("Bob"), pb_user("Carol")
    pages = []

    def from_a_new_address(n):
        pages.append(Browser(relay))
        return pages[-1].login(bob.email, f"wrong-{n}")

    passed, _ = until_throttled(from_a_new_address, "failed logins for this account")
    assert ACCOUNT_LIMIT <= passed <= 2 * ACCOUNT_LIMIT
    # The address that was refused has no failure of its own: another account logs in from it.
    assert logged_in(pages[-1].login(carol.email, carol.password))


def test_the_address_limit_holds_across_accounts_and_a_forged_forwarded_for_changes_nothing(relay, pb_user):
    dave = pb_user("Dave")
    page = Browser(relay)
    forged = lambda n: {"X-Forwarded-For": f"198.51.100.{n + 1}"}  # noqa: E731 - the relay trusts no proxy
    passed, _ = until_throttled(lambda n: page.login(fresh_email(), "wrong", headers=forged(n)),
                                "failed logins from your address")
    assert IP_LIMIT <= passed <= 2 * IP_LIMIT
    assert throttled(page.login(dave.email, dave.password), "failed logins from your address")
    assert logged_in(Browser(relay).login(dave.email, dave.password))  # from another address


def test_successful_logins_do_not_count(relay, pb_user):
    erin = pb_user("Erin")
    page = Browser(relay)
    for _ in range(2 * IP_LIMIT + 1):
        assert logged_in(page.login(erin.email, erin.password))
    for n in range(ACCOUNT_LIMIT):
        response = page.login(erin.email, f"wrong-{n}")
        assert response.status_code == 400 and WRONG in response.text
    # Now the account is at its limit, from any address.
    assert throttled(Browser(relay).login(erin.email, erin.password), "failed logins for this account")


def test_signups_beyond_the_address_limit_get_429_and_create_no_user(relay, pb_admin):
    page = Browser(relay)
    created, refused = [], []
    for _ in range(MAX_TRIES):
        email = fresh_email()
        response = page.signup(email)
        if throttled(response, "sign-ups from your address"):
            refused.append(email)
            if len(refused) == 3:
                break
        else:
            assert logged_in(response), response.status_code
            created.append(email)
    assert SIGNUP_LIMIT <= len(created) <= 2 * SIGNUP_LIMIT
    assert all(pb_admin.find_user(email) for email in created)
    assert not any(pb_admin.find_user(email) for email in refused)
    email = fresh_email()
    assert logged_in(Browser(relay).signup(email)) and pb_admin.find_user(email)  # another address may


def test_a_correct_login_works_once_the_window_has_passed(relay_factory, pb_user):
    quick = relay_factory(env={"RELAY_LOGIN_ACCOUNT_RATE": "2/5s"}, workers=0)
    try:
        frank = pb_user("Frank")
        page = Browser(quick)
        _, refusal = until_throttled(lambda n: page.login(frank.email, f"wrong-{n}"), "failed logins for this account")
        assert int(refusal.headers["Retry-After"]) <= 6
        time.sleep(int(refusal.headers["Retry-After"]))  # as long as the relay said to wait
        assert logged_in(page.login(frank.email, frank.password))
        chat = page.http.get(quick.http_url, timeout=10)
        assert chat.status_code == 200 and "Frank" in chat.text
    finally:
        quick.stop()


def test_with_redis_down_the_forms_answer_503_and_work_again_after(relay, pb_user, redis_server):
    grace = pb_user("Grace")
    page = Browser(relay)
    redis_server.stop()
    try:
        for response in (page.login(grace.email, grace.password), page.signup(fresh_email())):
            assert response.status_code == 503, response.status_code
            assert "its limits cannot be checked" in response.text
    finally:
        redis_server.start()
    assert logged_in(page.login(grace.email, grace.password))
