"""Unit tests of the pure parts of relay_client (no network, no Django).

Run: .venv/bin/python -m pytest -p no:django tests/test_client_units.py -q
"""

import asyncio
import datetime as dt
import getpass
import io
import json
import re

import pytest

import relay_client as c
from relay_client import cli, gaps, pending, session

UTC = dt.timezone.utc
NS = 1_000_000_000
# 2025-11-29 09:41:03.123456789 UTC, in Unix nanoseconds
TS = int(dt.datetime(2025, 11, 29, 9, 41, 3, tzinfo=UTC).timestamp()) * NS + 123_456_789


def msg(id="1-1", channel="channel1", ts=TS, text="hello", **extra):
    return {"id": id, "channelid": channel, "userid": "u1", "text": text, "ts": ts, **extra}


# ------------------------------------------------------------------ ws URL derivation

@pytest.mark.parametrize("base, expected", [
    ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/"),
    ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws/"),
    ("https://relay.example.com", "wss://relay.example.com/ws/"),
    ("HTTPS://relay.example.com:8443/", "wss://relay.example.com:8443/ws/"),
    ("http://host/chat", "ws://host/chat/ws/"),
    ("http://host/chat/", "ws://host/chat/ws/"),
    ("http://[::1]:8000", "ws://[::1]:8000/ws/"),
    ("127.0.0.1:8000", "ws://127.0.0.1:8000/ws/"),
    ("localhost", "ws://localhost/ws/"),
    ("  http://h:1  ", "ws://h:1/ws/"),
    ("http://h?token=abc", "ws://h/ws/?token=abc"),
    ("http://h#frag", "ws://h/ws/"),
    ("ws://h:8000", "ws://h:8000/ws/"),
    ("wss://h/custom/path/", "wss://h/custom/path/"),
])
def test_ws_url(base, expected):
    assert c.ws_url(base) == expected


@pytest.mark.parametrize("base", ["ftp://host", "http://", "https:///path", "mailto://x@"])
def test_ws_url_rejects(base):
    with pytest.raises(ValueError):
        c.ws_url(base)


def test_pocketbase_auth_url():
    assert (c.pocketbase_auth_url("http://127.0.0.1:8090/")
            == "http://127.0.0.1:8090/api/collections/users/auth-with-password")
    assert (c.pocketbase_auth_url("pb.local:8090")
            == "http://pb.local:8090/api/collections/users/auth-with-password")


# --------------------------------------------------------------- time formatting (ns)

def test_format_clock_same_day_is_time_only():
    assert c.format_clock(TS, now_ns=TS + 3600 * NS, tz=UTC) == "09:41:03"


def test_format_clock_other_day_has_date():
    assert c.format_clock(TS, now_ns=TS + 2 * 86400 * NS, tz=UTC) == "2025-11-29 09:41:03"


def test_format_clock_floors_nanoseconds():
    just_before = TS - 123_456_789 - 1  # 09:41:02.999999999
    assert c.format_clock(just_before, now_ns=TS, tz=UTC) == "09:41:02"


def test_format_clock_uses_the_given_zone():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert c.format_clock(TS, now_ns=TS, tz=plus2) == "11:41:03"


def test_format_clock_defaults_to_local_time():
    expected = dt.datetime.fromtimestamp(TS // NS).strftime("%H:%M:%S")
    assert c.format_clock(TS, now_ns=TS) == expected


def test_format_clock_treats_value_as_nanoseconds_not_seconds():
    # The same number read as seconds would be far outside the datetime range.
    assert c.format_clock(1_764_400_000_123_456_789, now_ns=1_764_400_000_123_456_789, tz=UTC) == "07:06:40"


@pytest.mark.parametrize("bad", [None, "123", 1.5, True, 10**30])
def test_format_clock_never_raises(bad):
    assert c.format_clock(bad, now_ns=TS, tz=UTC) == "??:??:??"


# -------------------------------------------------------------------- line formatting

def test_format_message_human_line():
    line = c.format_message(msg(name="Bob"), now_ns=TS, tz=UTC)
    assert line == "[channel1 09:41:03] Bob: hello"


def test_format_message_falls_back_to_userid_and_marks_replay():
    line = c.format_message(msg(), replay=True, now_ns=TS, tz=UTC)
    assert line == "[channel1 09:41:03 replay] u1: hello"


def test_format_message_multiline_is_indented_and_controls_are_escaped():
    line = c.format_message(msg(name="Bob", text="a\r\nb\x1b[31m\tc"), now_ns=TS, tz=UTC)
    prefix = "[channel1 09:41:03] Bob: "
    assert line == prefix + "a\n" + " " * len(prefix) + "b\\x1b[31m\tc"


def test_format_message_keeps_unicode_as_is():
    text = "caf\u00e9 \u202eevil\u202c e\u0301 \U0001f600"
    assert c.format_message(msg(text=text), now_ns=TS, tz=UTC).endswith(": " + text)


def test_clean_text_single_line_names():
    assert c.clean_text("Bo\nb\x07", multiline=False) == "Bo b\\x07"
    assert c.clean_text("x\x85y") == "x\\x85y"  # C1 control


def test_format_error_line():
    frame = {"type": "error", "code": "rate_limited", "message": "Too many messages", "retry_after": 1.5, "ref": 3}
    assert c.format_error(frame) == "! rate_limited: Too many messages (retry after 1.5s)"
    assert c.format_error(frame, "publish channel1").endswith("[publish channel1]")
    assert c.format_error({"type": "error", "code": "forbidden"}) == "! forbidden"


def test_format_frame_welcome():
    frame = {"type": "welcome", "userid": "u1", "name": "Bob",
             "subscriptions": [{"channel": "a", "last_ts": TS}, {"channel": "b", "last_ts": None}]}
    [line] = c.format_frame(frame, now_ns=TS, tz=UTC)
    assert line == "* welcome Bob (user u1); subscriptions: a (last 09:41:03), b (nothing seen yet)"


def test_format_frame_subscribed_truncated_points_to_history():
    frame = {"type": "subscribed", "channel": "channel1", "truncated": True,
             "messages": [msg("1", ts=TS), msg("2", ts=TS + 1)]}
    lines = c.format_frame(frame, now_ns=TS, tz=UTC)
    assert lines[0] == f"* subscribed to channel1: 2 messages (older ones skipped; /history channel1 {TS} shows them)"
    assert len(lines) == 3


def test_format_frame_subscribed_uses_shown_after_dedupe():
    frame = {"type": "subscribed", "channel": "channel1", "truncated": False, "messages": [msg("1")]}
    assert c.format_frame(frame, shown=[]) == ["* subscribed to channel1: no new messages"]


def test_format_frame_history_more_hint():
    frame = {"type": "history", "channel": "channel1", "more": True, "messages": [msg("1", ts=TS + 5), msg("2", ts=TS + 9)]}
    lines = c.format_frame(frame, now_ns=TS, tz=UTC)
    assert lines[0] == "* history of channel1: 2 messages"
    assert lines[-1] == f"* more: /history channel1 {TS + 5}"


def test_format_frame_ack_message_and_others():
    ack = {"type": "ack", "client_id": "k", "message": msg("7-7")}
    assert c.format_frame(ack, now_ns=TS, tz=UTC) == ["* sent to channel1 at 09:41:03 (id 7-7)"]
    live = {"type": "message", "message": msg(name="Bob"), "replay": True}
    assert c.format_frame(live, now_ns=TS, tz=UTC) == ["[channel1 09:41:03 replay] Bob: hello"]
    assert c.format_frame({"type": "unsubscribed", "channel": "a", "reason": "forbidden"}) == [
        "! unsubscribed from a: forbidden"]
    assert c.format_frame({"type": "pong"}) == ["* pong"]
    assert c.format_frame({"type": "mystery", "x": 1})[0].startswith("? ")


@pytest.mark.parametrize("frame", [
    {"type": "welcome", "subscriptions": 5},
    {"type": "subscribed", "messages": "nope"},
    {"type": "message", "message": None},
    {"type": "history", "messages": [1, None, {"ts": "x"}], "more": True},
    {"type": "ack", "message": []},
    {"type": "error"},
    {},
])
def test_format_frame_tolerates_odd_shapes(frame):
    assert isinstance(c.format_frame(frame), list)


# ---------------------------------------------------------------- frame construction

def test_subscribe_frame():
    assert c.subscribe_frame("channel1") == {"type": "subscribe", "channel": "channel1"}
    assert c.subscribe_frame("c", since=TS, limit=50, ref=7) == {
        "type": "subscribe", "channel": "c", "since": TS, "limit": 50, "ref": 7}
    assert c.subscribe_frame("c", since=0)["since"] == 0


def test_publish_frame_generates_client_id():
    frame = c.publish_frame("channel1", "  hi  ", ref="r1")
    assert frame["type"] == "publish" and frame["channel"] == "channel1"
    assert frame["text"] == "  hi  "  # sent exactly, no trimming
    assert frame["ref"] == "r1"
    assert re.fullmatch(r"[0-9a-f]{32}", frame["client_id"])
    assert c.publish_frame("channel1", "hi")["client_id"] != frame["client_id"]


def test_publish_frame_keeps_given_client_id_and_omits_absent_ref():
    frame = c.publish_frame("c", "hi", client_id="abc")
    assert frame == {"type": "publish", "channel": "c", "text": "hi", "client_id": "abc"}


def test_history_unsubscribe_ping_frames():
    assert c.history_frame("c", before=TS, ref=2) == {"type": "history", "channel": "c", "before": TS, "ref": 2}
    assert c.history_frame("c", since=1, limit=1000) == {"type": "history", "channel": "c", "since": 1, "limit": 1000}
    assert c.unsubscribe_frame("c", ref=0) == {"type": "unsubscribe", "channel": "c", "ref": 0}
    assert c.ping_frame() == {"type": "ping"}


@pytest.mark.parametrize("call", [
    lambda: c.subscribe_frame("bad channel"),
    lambda: c.subscribe_frame("x" * 65),
    lambda: c.subscribe_frame(""),
    lambda: c.subscribe_frame(None),
    lambda: c.subscribe_frame("c", since=-1),
    lambda: c.subscribe_frame("c", since=2**63),
    lambda: c.subscribe_frame("c", since=True),
    lambda: c.subscribe_frame("c", since=1.0),
    lambda: c.subscribe_frame("c", since="5"),
    lambda: c.subscribe_frame("c", limit=0),
    lambda: c.history_frame("c", before=-5),
    lambda: c.publish_frame("c", ""),
    lambda: c.publish_frame("c", None),
    lambda: c.publish_frame("c", "hi", client_id=""),
    lambda: c.publish_frame("c", "hi", client_id="k" * 65),
    lambda: c.publish_frame("c", "hi", ref=[1]),
    lambda: c.publish_frame("c", "hi", ref=True),
])
def test_frame_builders_reject_what_the_relay_would_refuse(call):
    with pytest.raises(ValueError):
        call()


def test_channel_rule():
    assert c.is_valid_channel("A-z_09") and c.is_valid_channel("x" * 64)
    assert not c.is_valid_channel("x" * 65)
    assert not c.is_valid_channel("a.b") and not c.is_valid_channel("chan\n")
    assert not c.is_valid_channel("\u00e9") and not c.is_valid_channel(5)


def test_encode_frame_limits():
    text = c.encode_frame(c.publish_frame("c", "\u00e9", client_id="k"))
    assert json.loads(text)["text"] == "\u00e9" and "\u00e9" in text  # UTF-8, compact
    with pytest.raises(ValueError, match="too large"):
        c.encode_frame(c.publish_frame("c", "\u00e9" * 33_000))  # 66,000 bytes of UTF-8
    with pytest.raises(ValueError, match="surrogate"):
        c.encode_frame(c.publish_frame("c", "bad \udcff"))


# -------------------------------------------------------------------- command parsing

@pytest.mark.parametrize("line, current, expected", [
    ("/sub channel1", None, c.Command("sub", channel="channel1")),
    ("/sub channel1 1764400000123456789", None, c.Command("sub", channel="channel1", ts=1764400000123456789)),
    ("/SUBSCRIBE  c  ", None, c.Command("sub", channel="c")),
    ("/unsub", "cur", c.Command("unsub", channel="cur")),
    ("/unsub other", "cur", c.Command("unsub", channel="other")),
    ("/history", "cur", c.Command("history", channel="cur")),
    ("/history c 123", None, c.Command("history", channel="c", ts=123)),
    ("/history 123", "cur", c.Command("history", channel="123")),  # one argument is a channel
    ("/join general", None, c.Command("join", channel="general")),
    ("/quit", None, c.Command("quit")),
    ("/q", None, c.Command("quit")),
    ("/help", None, c.Command("help")),
    ("/?", None, c.Command("help")),
    ("hello there", "cur", c.Command("say", channel="cur", text="hello there")),
    ("  spaced  ", "cur", c.Command("say", channel="cur", text="  spaced  ")),
    ("//slash", "cur", c.Command("say", channel="cur", text="/slash")),
    ("", "cur", None),
    ("   \t", "cur", None),
])
def test_parse_command(line, current, expected):
    assert c.parse_command(line, current=current) == expected


@pytest.mark.parametrize("line, current, fragment", [
    ("/nope", "cur", "unknown command"),
    ("/", "cur", "unknown command"),
    ("/sub", "cur", "which channel"),
    ("/join", None, "which channel"),
    ("/sub bad!chan", None, "invalid channel"),
    ("/sub c 12x", None, "digits"),
    ("/sub c -5", None, "digits"),
    ("/sub c 1_000", None, "digits"),
    (f"/sub c {2**63}", None, "at most"),
    ("/sub c 1 2", None, "too many"),
    ("/quit now", None, "too many"),
    ("/unsub", None, "no current channel"),
    ("/history", None, "no current channel"),
    ("hello", None, "no current channel"),
])
def test_parse_command_errors(line, current, fragment):
    with pytest.raises(c.CommandError, match=fragment):
        c.parse_command(line, current=current)


# ----------------------------------------------------------- dedupe and resume points

def test_tracker_dedupes_by_id_per_channel():
    t = c.MessageTracker()
    assert t.add(msg("1-1")) is True
    assert t.add(msg("1-1")) is False  # the same message again (e.g. a replay)
    assert t.add(msg("1-1", channel="other")) is True  # ids are unique per channel only
    assert t.add({"channelid": "c", "ts": 5, "text": "no id"}) is True
    assert t.add({"channelid": "c", "ts": 5, "text": "no id"}) is True


def test_tracker_positions_move_forward_only():
    t = c.MessageTracker()
    assert t.position("channel1") is None
    t.add(msg("a", ts=TS + 10))
    t.add(msg("b", ts=TS + 5))  # an older one (replay) does not move the position back
    assert t.position("channel1") == TS + 10
    t.advance("channel1", TS)
    t.advance("channel1", "junk")
    t.advance("channel1", True)
    assert t.position("channel1") == TS + 10
    t.advance("empty", 0)
    assert t.position("empty") == 0


def test_tracker_uses_given_channel_when_message_lacks_one():
    t = c.MessageTracker()
    t.add({"id": "1", "ts": 42}, "fallback")
    assert t.position("fallback") == 42


def test_tracker_forgets_oldest_ids_beyond_its_bound():
    t = c.MessageTracker(max_ids=2)
    for i in "123":
        assert t.add(msg(i))
    assert t.add(msg("3")) is False
    assert t.add(msg("1")) is True  # forgotten, so shown again


# ------------------------------------------------- the gap a truncated resume leaves

def subscribed(*messages, truncated=True):
    return {"type": "subscribed", "channel": "channel1", "truncated": truncated, "messages": list(messages)}


def test_gap_of_a_truncated_resume():
    assert gaps.gap_of(subscribed(msg("5", ts=TS + 5), msg("9", ts=TS + 9)), TS) == (TS, TS + 5)


@pytest.mark.parametrize("frame, since", [
    (subscribed(msg("5", ts=TS + 5), truncated=False), TS),  # everything after since came
    (subscribed(msg("5", ts=TS + 5)), None),  # no position: only older history was left out
    (subscribed(), TS),
    (subscribed(msg("5", ts="x")), TS),
    (subscribed(msg("5", ts=TS)), TS),
])
def test_gap_of_is_none_when_nothing_was_left_out(frame, since):
    assert gaps.gap_of(frame, since) is None


class FakeHistory:
    """The relay's history pages over ``stored`` (oldest first), as PROTOCOL.md pages
    them with ``since`` (the oldest ``limit`` after it, before ``before``)."""

    def __init__(self, stored, error_after=None):
        self.stored, self.frames, self.error_after = stored, [], error_after

    async def __call__(self, frame):
        self.frames.append(frame)
        if self.error_after is not None and len(self.frames) > self.error_after:
            return {"type": "error", "code": "unavailable", "message": "try again"}
        inside = [m for m in self.stored if frame["since"] < m["ts"] < frame["before"]]
        return {"type": "history", "channel": frame["channel"], "messages": inside[:frame["limit"]],
                "more": len(inside) > frame["limit"]}


async def test_fill_gap_pages_forward_until_more_is_false():
    stored = [msg(str(i), ts=TS + i) for i in range(1, 40)]
    history = FakeHistory(stored)
    found, rest = await gaps.fill_gap(history, "channel1", TS + 3, TS + 30, limit=1000)
    assert [m["ts"] for m in found] == list(range(TS + 4, TS + 30)) and rest is False
    assert history.frames == [{"type": "history", "channel": "channel1", "since": TS + 3, "before": TS + 30,
                               "limit": 1000}]


async def test_fill_gap_is_bounded_and_says_what_it_left_out():
    stored = [msg(str(i), ts=TS + i) for i in range(1, 40)]
    history = FakeHistory(stored)
    found, rest = await gaps.fill_gap(history, "channel1", TS, TS + 35, limit=25)
    assert [m["ts"] for m in found] == list(range(TS + 1, TS + 26)) and rest is True
    found, rest = await gaps.fill_gap(FakeHistory(stored, error_after=0), "channel1", TS, TS + 35)
    assert found == [] and rest is True


async def test_fill_gap_pages_on_from_the_newest_of_each_page():
    stored = [msg(str(i), ts=TS + i) for i in range(1, 40)]

    class SmallPages(FakeHistory):  # a relay that clamps pages to 10
        async def __call__(self, frame):
            return await super().__call__({**frame, "limit": min(frame["limit"], 10)})

    history = SmallPages(stored)
    found, rest = await gaps.fill_gap(history, "channel1", TS, TS + 35, limit=1000)
    assert [m["ts"] for m in found] == list(range(TS + 1, TS + 35)) and rest is False
    assert [f["since"] for f in history.frames] == [TS, TS + 10, TS + 20, TS + 30]


@pytest.mark.parametrize("answer, note", [
    ({"type": "history", "channel": "channel1", "messages": [msg("2", ts=TS + 2, text="missed")], "more": False},
     False),
    ({"type": "error", "code": "unavailable", "message": "try again"}, True),
])
async def test_a_truncated_resume_prints_the_missed_messages_first(answer, note):
    """The page is printed after the messages it left out, then what arrived meanwhile;
    the subscribe is answered once all of it is printed. Messages the client could not
    fetch get a line in their place."""
    out = io.StringIO()
    client = session.RelayClient("ws://127.0.0.1:9/ws/", "token", stdout=out, stderr=io.StringIO())
    asked, gate = [], asyncio.Event()

    async def history(frame, quiet=False):
        asked.append((frame, quiet))
        await gate.wait()
        return answer

    client.requests.request = history
    reply = asyncio.get_running_loop().create_future()
    client.requests.pending[1] = pending.Pending({"type": "subscribe", "channel": "channel1", "since": TS, "ref": 1}, reply)
    client.incoming.handle({**subscribed(msg("5", ts=TS + 5, text="page")), "ref": 1})
    client.incoming.handle({"type": "message", "message": msg("6", ts=TS + 6, text="live")})
    assert out.getvalue() == "" and not reply.done()
    gate.set()
    assert (await asyncio.wait_for(reply, 5))["type"] == "subscribed"
    lines = [re.sub(r"^\[channel1 [^]]+\] u1: ", "", line) for line in out.getvalue().splitlines()]
    skipped = f"* more missed messages of channel1 are not shown here; /history channel1 {TS + 5} shows the newest of them"
    if note:
        assert lines == ["* subscribed to channel1: 1 message", skipped, "page", "live"]
    else:
        assert lines == ["* subscribed to channel1: 2 messages", "missed", "page", "live"]
    assert asked == [({"type": "history", "channel": "channel1", "since": TS, "before": TS + 5, "limit": 1000}, True)]
    assert client.printed == len(lines) - 1 - note


def test_backoff_delays_grow_to_a_cap():
    delays = c.backoff_delays(initial=0.5, maximum=4)
    first = next(delays)
    assert 0 <= first <= 0.5
    assert [next(delays) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]


def test_module_does_not_import_django():
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    code = "import sys, relay_client; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_package_imports_nothing_of_the_server():
    """relay_client stands alone: none of its modules pulls in messaging or auth_pocketbase."""
    import pathlib
    import subprocess
    import sys
    root = pathlib.Path(__file__).resolve().parents[1]
    code = ("import importlib, pkgutil, sys, relay_client\n"
            "for m in pkgutil.iter_modules(relay_client.__path__):\n"
            "    if m.name != '__main__': importlib.import_module('relay_client.' + m.name)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'django', 'messaging', 'auth_pocketbase'}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert (run.returncode, run.stdout.strip()) == (0, "[]"), run.stderr


def test_argument_errors_exit_1(capsys):
    with pytest.raises(SystemExit) as exc:
        c.main(["--token", "t", "--subscribe", "bad chan"])
    assert exc.value.code == 1
    assert "invalid channel" in capsys.readouterr().err


@pytest.mark.parametrize("argv, field, expected", [
    (["--email", "-bob@example.com", "--password", "-x1-"], "password", "-x1-"),
    (["--pass", "-y"], "password", "-y"),
    (["--password=-z"], "password", "-z"),
    (["--send", "-general", "-hi", "--send", "c", "--"], "send", [["-general", "-hi"], ["c", "--"]]),
    (["--subscribe", "-general", "--json"], "subscribe", ["-general"]),
    (["--token", "-t", "--timeout", "5"], "token", "-t"),
])
def test_option_values_may_begin_with_a_dash(argv, field, expected):
    # a generated password "-x..." was taken for an unknown option (a flaky e2e test found it)
    assert getattr(cli.build_parser().parse_args(argv), field) == expected


def test_a_refused_value_beginning_with_a_dash_is_named_as_given(capsys):
    with pytest.raises(SystemExit) as exc:
        c.main(["--token", "t", "--wait-for", "-1"])
    assert exc.value.code == 1
    assert "not '-1'" in capsys.readouterr().err


def test_a_missing_password_without_a_terminal_is_one_clear_line(capsys, monkeypatch):
    # without a terminal getpass warns and prompts with echo on stdin; the client refuses instead
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setattr("getpass.getpass", getpass.fallback_getpass)  # what getpass does without /dev/tty
    assert c.main(["--email", "bob@example.com", "--send", "c", "hi"]) == 1
    assert capsys.readouterr().err.strip() == "error: --password is required without a terminal"
