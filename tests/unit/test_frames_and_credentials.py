"""Client frame parsing and credential extraction."""
import pytest

from auth_pocketbase.credentials import BadCredential, token_from_authorization, token_from_query
from auth_pocketbase.verification import Unauthorized, token_expiry
from messaging.protocol import frames
from messaging.protocol.errors import RelayError


def parse(obj):
    return frames.parse_command(obj, 4000)


def test_publish_frame():
    cmd = parse({"type": "publish", "channel": "c", "text": "hi", "client_id": "k", "ref": 3})
    assert (cmd.type, cmd.channel, cmd.text, cmd.client_id, cmd.ref) == ("publish", "c", "hi", "k", 3)


def test_forged_userid_and_ts_are_ignored():
    cmd = parse({"type": "publish", "channel": "c", "text": "hi", "userid": "someone", "ts": 1})
    assert not hasattr(cmd, "userid") and not hasattr(cmd, "ts")


def test_subscribe_defaults_and_clamps():
    assert parse({"type": "subscribe", "channel": "c"}).limit == 100
    assert parse({"type": "subscribe", "channel": "c", "limit": 10**6}).limit == 1000
    assert parse({"type": "subscribe", "channel": "c", "since": None}).since is None


@pytest.mark.parametrize("obj,code", [
    ([], "bad_frame"), ("x", "bad_frame"), ({}, "bad_frame"), ({"type": "nope"}, "bad_frame"),
    ({"type": "ping", "ref": {"a": 1}}, "bad_frame"), ({"type": "ping", "ref": True}, "bad_frame"),
    ({"type": "subscribe"}, "invalid_channel"), ({"type": "publish", "channel": "a.*", "text": "x"}, "invalid_channel"),
    ({"type": "publish", "channel": "c"}, "invalid_message"),
    ({"type": "publish", "channel": "c", "text": "x", "client_id": ""}, "bad_frame"),
    ({"type": "history", "channel": "c", "before": "1"}, "bad_frame"),
])
def test_bad_frames(obj, code):
    with pytest.raises(RelayError) as err:
        parse(obj)
    assert err.value.code == code


def test_ref_is_echoed_only_when_valid():
    assert frames.safe_ref({"ref": "r1"}) == "r1"
    assert frames.safe_ref({"ref": [1]}) is None
    assert frames.safe_ref("not a dict") is None


def test_decode_accepts_lone_surrogate_escapes_for_text_validation():
    assert frames.decode('{"text": "\\ud800"}') == {"text": "\ud800"}
    with pytest.raises(RelayError):
        frames.decode("{nope")


def test_frame_size_is_measured_in_utf8_bytes():
    assert not frames.frame_too_large("a" * 65_536)
    assert frames.frame_too_large("a" * 65_537)
    assert frames.frame_too_large("é" * 32_769)  # 65,538 bytes
    assert not frames.frame_too_large("é" * 32_768)


@pytest.mark.parametrize("values,token", [
    ([], None), (["Bearer abc"], "abc"), (["bearer abc"], "abc"), (["abc"], "abc"), (["  Bearer  abc "], "abc"),
])
def test_authorization_header(values, token):
    assert token_from_authorization(values) == token


@pytest.mark.parametrize("values", [["Bearer a", "Bearer b"], ["Bearer "], [""], ["Bearer a b"]])
def test_bad_authorization_header(values):
    with pytest.raises(BadCredential):
        token_from_authorization(values)


def test_query_token():
    assert token_from_query(b"") is None
    assert token_from_query(b"token=abc&x=1") == "abc"
    with pytest.raises(BadCredential):
        token_from_query(b"token=a&token=b")
    with pytest.raises(BadCredential):
        token_from_query(b"token=")


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
def test_tokens_in_a_wrong_format_are_unauthorized(token):
    with pytest.raises(Unauthorized):
        token_expiry(token)
