"""The Django admin for channels, with real Redis (and NATS for replay), as staff."""
import threading
import uuid

import pytest
import redis as redis_sync
from django.contrib.auth.models import User

from messaging.models import Channel, Subscription
from messaging.ops import access_changes as revocation
from messaging.protocol.timestamps import ts_to_datetime
from messaging.state import backends, records
from messaging.state.keys import history_key

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/messaging/channel/"
CAP = 100_000  # subscriptions per user: the session Redis keeps every test's aliceid subscriptions


def run_sweep(timer):
    """Let a held second sweep run now, and wait for it."""
    threading.Thread.start(timer)
    timer.join(30)


@pytest.fixture(autouse=True)
def second_sweeps(relay_settings, monkeypatch):
    """The admin's second revocation sweeps, held until the test runs them (run_sweep)
    instead of SECOND_SWEEP_AFTER_S later; the ones left run before the settings go."""
    timers = []

    class Held(revocation.Timer):
        def start(self):
            timers.append(self)

    monkeypatch.setattr(revocation, "SECOND_SWEEP_AFTER_S", 0)
    monkeypatch.setattr(revocation, "Timer", Held)
    yield timers
    for timer in timers:
        if timer.ident is None:
            run_sweep(timer)


@pytest.fixture
def seeded(relay_settings):
    """A channel with 5 messages from 'bob' and one subscriber, Alice, whose cursor is at the 3rd."""
    name = f"adm-{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=name)

    async def seed():
        store, registry = backends.get().history, backends.get().registry
        sent = [(await store.append(name, "bobid", "Bob", f"note {i} <b>bold</b>", None)).message for i in range(5)]
        await registry.subscribe("aliceid", name, CAP)
        await registry.advance_cursors("aliceid", {name: sent[2]["ts"]})
        return sent

    sent = backends.run_sync(seed)
    Subscription.objects.create(channel=channel, userid="aliceid", name="Alice")
    return channel, sent


def xlen(settings, name):
    return redis_sync.Redis.from_url(settings.REDIS_URL).xlen(history_key(name))


def test_changelist_shows_live_counts_and_searches(admin_client, seeded):
    channel, sent = seeded
    page = admin_client.get(CHANGELIST, {"q": channel.name})
    assert page.status_code == 200
    rows = page.context["cl"].result_list
    assert [c.name for c in rows] == [channel.name]
    assert (rows[0].stats.messages, rows[0].stats.subscribers, rows[0].stats.last_ts) == (5, 1, sent[-1]["ts"])
    assert admin_client.get(CHANGELIST, {"access__exact": "members", "q": channel.name}).context["cl"].result_list.count() == 0


def test_channel_page_shows_recent_messages_escaped_and_cursors(admin_client, seeded):
    channel, sent = seeded
    page = admin_client.get(f"{CHANGELIST}{channel.pk}/change/")
    assert page.status_code == 200
    assert [m["id"] for m in page.context["recent_messages"]] == [m["id"] for m in reversed(sent)]
    html = page.content.decode()
    assert "note 4 &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert page.context["subscribers"] == [{"userid": "aliceid", "name": "Alice", "cursor": ts_to_datetime(sent[2]["ts"])}]


def test_subscribers_and_members_are_shown_with_their_names(admin_client, seeded):
    """Names come from the subscription mirror (any channel), else from the channel's
    recent messages; a user the relay never saw is shown by id alone."""
    channel, _ = seeded
    Subscription.objects.create(channel=channel, userid="bobid")  # posted, subscribed before names were kept
    other = Channel.objects.create(name=f"{channel.name}-other")
    Subscription.objects.create(channel=other, userid="carolid", name="Carol")
    for userid in ("carolid", "daveid"):
        channel.members.create(userid=userid)
    page = admin_client.get(f"{CHANGELIST}{channel.pk}/change/")
    names = {s["userid"]: s["name"] for s in page.context["subscribers"]}
    assert names == {"aliceid": "Alice", "bobid": "Bob"}
    html = page.content.decode()
    assert "<td>Alice</td><td>aliceid</td>" in html and "<td>Bob</td><td>bobid</td>" in html
    inline = page.context["inline_admin_formsets"][0]
    shown = {form.form.instance.userid: form.model_admin.name(form.form.instance) for form in inline if form.original}
    assert shown == {"carolid": "Carol", "daveid": ""}


def test_subscription_mirror_keeps_the_latest_name(relay_settings):
    name = f"adm-{uuid.uuid4().hex[:8]}"
    records.apply_changes({(name, "aliceid"): "Alice"})
    records.apply_changes({(name, "aliceid"): "Alice B."})
    assert list(Subscription.objects.filter(channel__name=name).values_list("userid", "name")) == [("aliceid", "Alice B.")]
    records.apply_changes({(name, "aliceid"): None})
    assert not Subscription.objects.filter(channel__name=name).exists()


def test_staff_only(client, seeded):
    user = User.objects.create_user("mallory", password="pw-123456789")
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 302
    client.logout()
    assert client.get(CHANGELIST).status_code == 302


def test_trim_and_delete_history_actions(admin_client, seeded, settings):
    channel, _ = seeded
    ask = admin_client.post(CHANGELIST, {"action": "trim_history", "_selected_action": [channel.pk]})
    assert ask.status_code == 200 and b"keep" in ask.content
    done = admin_client.post(CHANGELIST, {"action": "trim_history", "_selected_action": [channel.pk], "apply": "yes", "keep": "2"},
                             follow=True)
    assert done.redirect_chain[0][1] == 302 and xlen(settings, channel.name) == 2
    said = f"Channel “{channel.name}”: removed 3 old messages, kept at most 2."
    assert [str(m) for m in done.context["messages"]] == [said] and said in done.content.decode()

    confirm = admin_client.post(CHANGELIST, {"action": "delete_history", "_selected_action": [channel.pk]})
    assert confirm.status_code == 200 and b"are you sure" in confirm.content
    assert xlen(settings, channel.name) == 2  # nothing deleted before confirming
    done = admin_client.post(CHANGELIST, {"action": "delete_history", "_selected_action": [channel.pk], "apply": "yes"},
                             follow=True)
    assert xlen(settings, channel.name) == 0
    said = f"Channel “{channel.name}”: deleted 2 messages."
    assert [str(m) for m in done.context["messages"]] == [said] and said in done.content.decode()


@pytest.mark.parametrize("since,until,user,needle", [
    ("yesterday", "", "", "not a time"),
    ("10m", "1h", "", "the range is empty"),
    ("", "", "nosuchuser", "not PocketBase users: nosuchuser"),
])
def test_replay_form_refuses_bad_times_and_unknown_users(admin_client, seeded, since, until, user, needle):
    channel, _ = seeded
    page = admin_client.post(CHANGELIST, {"action": "replay_range", "_selected_action": [channel.pk],
                                          "apply": "yes", "since": since, "until": until, "user": user})
    assert page.status_code == 200 and needle in page.content.decode()


def add_member_form(channel, userid: str) -> dict:
    """The channel page's form: access members, one new member row."""
    return {
        "access": "members",
        "members-TOTAL_FORMS": "1", "members-INITIAL_FORMS": "0", "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000", "members-0-userid": userid, "members-0-id": "", "members-0-channel": channel.pk,
    }


@pytest.mark.django_db(transaction=True)  # the second sweep reads the change in its own thread
def test_changing_access_in_the_admin_ends_subscriptions_of_users_who_lost_it(admin_client, seeded, settings, pb_user):
    channel, _ = seeded
    bob = pb_user("Bob")
    response = admin_client.post(f"{CHANGELIST}{channel.pk}/change/", add_member_form(channel, bob.id))
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.access == "members" and list(channel.members.values_list("userid", flat=True)) == [bob.id]
    r = redis_sync.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert r.smembers(f"relay:subscribers:{channel.name}") == set()
    assert r.hget("relay:subscriptions:aliceid", channel.name) is None
    assert not Subscription.objects.filter(channel=channel).exists()


@pytest.mark.parametrize("token,says", [
    ("superuser", "not PocketBase users: zzzznotauser"),
    ("", "POCKETBASE_SUPERUSER_TOKEN is not set"),
    ("not-a-token", "refused POCKETBASE_SUPERUSER_TOKEN"),
])
def test_the_admin_refuses_members_that_are_not_pocketbase_users(admin_client, seeded, settings, token, says):
    channel, _ = seeded
    if token != "superuser":
        settings.POCKETBASE_SUPERUSER_TOKEN = token
    page = admin_client.post(f"{CHANGELIST}{channel.pk}/change/", add_member_form(channel, "zzzznotauser"))
    assert page.status_code == 200 and says in page.content.decode()
    channel.refresh_from_db()
    assert channel.access == "open" and not channel.members.exists()  # nothing saved


@pytest.mark.django_db(transaction=True)  # the second sweep reads the change in its own thread
def test_a_subscription_added_back_after_the_admin_save_is_ended_by_the_second_sweep(admin_client, seeded, settings,
                                                                                      second_sweeps):
    """A subscribe checked against a policy cached before the change adds the user back
    after the first sweep; the sweep in the background ends it."""
    channel, _ = seeded
    response = admin_client.post(f"{CHANGELIST}{channel.pk}/change/", {
        "access": "members",
        "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0", "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302  # with the second sweep still held: the request does not wait for it
    (timer,) = second_sweeps
    backends.run_sync(lambda: backends.get().registry.subscribe("aliceid", channel.name, CAP))
    run_sweep(timer)
    r = redis_sync.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert r.smembers(f"relay:subscribers:{channel.name}") == set()
    assert r.hget("relay:subscriptions:aliceid", channel.name) is None
