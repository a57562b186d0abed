"""The page's session: login through PocketBase, CSRF on forms and on session writes
to the HTTP API (in-process Django test client, real PocketBase, Redis and NATS)."""
import uuid

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_like(relay_settings):
    return Client(enforce_csrf_checks=True)


def csrf_of(client, path="/login/"):
    client.get(path)
    return client.cookies["csrftoken"].value


def test_login_form_needs_its_csrf_token(browser_like, pb_user):
    alice = pb_user("Alice")
    refused = browser_like.post("/login/", {"email": alice.email, "password": alice.password})
    assert refused.status_code == 403
    token = csrf_of(browser_like)
    ok = browser_like.post("/login/", {"email": alice.email, "password": alice.password, "csrfmiddlewaretoken": token})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    page = browser_like.get("/")
    assert page.status_code == 200 and b"Alice" in page.content


def test_wrong_password_says_so_and_keeps_the_password_out_of_the_page(browser_like, pb_user):
    alice = pb_user("Alice")
    token = csrf_of(browser_like)
    page = browser_like.post("/login/", {"email": alice.email, "password": "wrong-password-xyz", "csrfmiddlewaretoken": token})
    assert page.status_code == 400
    assert b"Wrong email or password." in page.content and b"wrong-password-xyz" not in page.content


def test_session_writes_to_the_api_need_csrf(browser_like, pb_user):
    alice = pb_user("Alice")
    token = csrf_of(browser_like)
    browser_like.post("/login/", {"email": alice.email, "password": alice.password, "csrfmiddlewaretoken": token})
    channel = f"sess-{uuid.uuid4().hex[:8]}"
    url = f"/api/channels/{channel}/messages"
    assert browser_like.get(url).status_code == 200  # reads need no CSRF token
    refused = browser_like.post(url, {"text": "hi"}, content_type="application/json")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    token = browser_like.cookies["csrftoken"].value
    ok = browser_like.post(url, {"text": "hi"}, content_type="application/json", headers={"X-CSRFToken": token})
    assert ok.status_code == 201 and ok.json()["message"]["userid"] == alice.id


def test_logout_ends_the_session(browser_like, pb_user):
    alice = pb_user("Alice")
    token = csrf_of(browser_like)
    browser_like.post("/login/", {"email": alice.email, "password": alice.password, "csrfmiddlewaretoken": token})
    browser_like.post("/logout/", {"csrfmiddlewaretoken": browser_like.cookies["csrftoken"].value})
    assert browser_like.get("/").status_code == 302
    assert browser_like.get("/api/channels/").status_code == 401


@pytest.mark.django_db(transaction=True)  # the handshake reads the session from another thread
def test_websocket_handshake_takes_the_page_session_and_passes_send_through(relay_settings, pb_user):
    from asgiref.sync import async_to_sync

    from auth_pocketbase.middleware import PocketBaseAuthMiddlewareStack

    alice = pb_user("Alice")
    page = Client(enforce_csrf_checks=True)
    page.post("/login/", {"email": alice.email, "password": alice.password, "csrfmiddlewaretoken": csrf_of(page)})
    cookie = f"{relay_settings.SESSION_COOKIE_NAME}={page.cookies[relay_settings.SESSION_COOKIE_NAME].value}".encode()
    seen = {}

    async def inner(scope, receive, send):
        seen.update(auth=scope["relay_auth"], send=send)

    async def send(message):
        pass

    app = PocketBaseAuthMiddlewareStack(inner)
    handshake = {"type": "websocket", "path": "/ws/", "query_string": b"",
                 "headers": [(b"cookie", cookie), (b"origin", b"http://testserver")]}
    async_to_sync(app)(handshake, None, send)
    assert seen["auth"].user.id == alice.id
    assert seen["send"] is send  # frames are not wrapped to save a session

    without_origin = dict(handshake, headers=[(b"cookie", cookie)])
    async_to_sync(app)(without_origin, None, send)
    assert seen["auth"].error == "unauthorized"
