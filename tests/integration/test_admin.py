"""The Django admin for channels, with real Redis (and NATS for replay), as staff."""
import uuid

import pytest
import redis as redis_sync
from django.contrib.auth.models import User

from messaging import backends, publishing
from messaging.history import history_key
from messaging.models import Channel, Subscription
from messaging.subscriptions import Registry
from messaging.timestamps import ts_to_datetime

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/messaging/channel/"


@pytest.fixture
def seeded(relay_settings):
    """A channel with 5 messages from 'bob' and one subscriber whose cursor is at the 3rd."""
    name = f"adm-{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=name)

    async def seed():
        redis = backends.get().redis
        store = publishing.history_store(redis)
        sent = [(await store.append(name, "bobid", "Bob", f"note {i} <b>bold</b>", None)).message for i in range(5)]
        registry = Registry(redis)
        await registry.subscribe("aliceid", name, 10)
        await registry.advance_cursors("aliceid", {name: sent[2]["ts"]})
        return sent

    sent = backends.run_sync(seed)
    Subscription.objects.create(channel=channel, userid="aliceid")
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
    (userid, cursor), = page.context["subscriber_cursors"]
    assert userid == "aliceid" and cursor == ts_to_datetime(sent[2]["ts"])


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
    done = admin_client.post(CHANGELIST, {"action": "trim_history", "_selected_action": [channel.pk], "apply": "yes", "keep": "2"})
    assert done.status_code == 302 and xlen(settings, channel.name) == 2

    confirm = admin_client.post(CHANGELIST, {"action": "delete_history", "_selected_action": [channel.pk]})
    assert confirm.status_code == 200 and b"are you sure" in confirm.content
    assert xlen(settings, channel.name) == 2  # nothing deleted before confirming
    admin_client.post(CHANGELIST, {"action": "delete_history", "_selected_action": [channel.pk], "apply": "yes"})
    assert xlen(settings, channel.name) == 0


def test_replay_form_refuses_bad_times(admin_client, seeded):
    channel, _ = seeded
    page = admin_client.post(CHANGELIST, {"action": "replay_range", "_selected_action": [channel.pk],
                                          "apply": "yes", "since": "yesterday", "until": "", "user": ""})
    assert page.status_code == 200 and "not a time" in page.content.decode()


def test_changing_access_in_the_admin_ends_subscriptions_of_users_who_lost_it(admin_client, seeded, settings):
    channel, _ = seeded
    response = admin_client.post(f"{CHANGELIST}{channel.pk}/change/", {
        "access": "members",
        "members-TOTAL_FORMS": "1", "members-INITIAL_FORMS": "0", "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000", "members-0-userid": "bobid", "members-0-id": "", "members-0-channel": channel.pk,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.access == "members" and list(channel.members.values_list("userid", flat=True)) == ["bobid"]
    r = redis_sync.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert r.smembers(f"relay:subscribers:{channel.name}") == set()
    assert r.hget("relay:subscriptions:aliceid", channel.name) is None
    assert not Subscription.objects.filter(channel=channel).exists()
