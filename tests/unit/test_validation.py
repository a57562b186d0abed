"""Plain rules of PROTOCOL.md: channel ids, text, client_id and paging values."""
import pytest

from messaging.protocol.errors import RelayError
from messaging.protocol.validation import (
    MAX_INT64,
    paging_from_json,
    paging_from_query,
    validate_channel,
    validate_client_id,
    validate_text,
)


@pytest.mark.parametrize("channel", ["a", "channel1", "A-Z_a-z-0-9", "x" * 64])
def test_valid_channels_are_accepted_unchanged(channel):
    assert validate_channel(channel) == channel


@pytest.mark.parametrize("channel", [
    "", "x" * 65, "a.>", "a.b", "*", ">", "a b", "a\nb", "chan\n", "a:b", "relay:history:x",
    "ａｂｃ", "са", "a\u200bb", "é", None, 12, ["a"], {"a": 1}, True,
])
def test_subject_and_key_injection_is_invalid_channel(channel):
    with pytest.raises(RelayError) as err:
        validate_channel(channel)
    assert err.value.code == "invalid_channel"


@pytest.mark.parametrize("text", [
    "hello", "a\nb\r\n\tc", "<script>alert(1)</script>", "👍🏽", "שלום", "e\u0301", "\u202eabc",
    " leading and trailing ", "x" * 4000,
])
def test_text_is_kept_exactly(text):
    assert validate_text(text, 4000) == text


@pytest.mark.parametrize("text", [
    None, 5, ["x"], "", " ", "\n\t ", "\u200b", "\u200b\u200c\ufeff", " \u2060 ", "x" * 4001,
    "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\x9fb", "\ud800", "x\udfffy",
])
def test_bad_text_is_invalid_message(text):
    with pytest.raises(RelayError) as err:
        validate_text(text, 4000)
    assert err.value.code == "invalid_message"


def test_text_limit_counts_code_points_not_bytes():
    assert validate_text("é" * 10, 10) == "é" * 10
    with pytest.raises(RelayError):
        validate_text("é" * 11, 10)


@pytest.mark.parametrize("value", [None, "k", "x" * 64, "ключ"])
def test_client_id_accepted(value):
    assert validate_client_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * 65, 5, True, ["a"]])
def test_client_id_refused_with_the_edge_code(value):
    with pytest.raises(RelayError) as ws:
        validate_client_id(value)
    with pytest.raises(RelayError) as http:
        validate_client_id(value, code="bad_request")
    assert (ws.value.code, http.value.code) == ("bad_frame", "bad_request")


def test_json_paging_values():
    assert paging_from_json("since", None) is None
    assert paging_from_json("since", 0) == 0
    assert paging_from_json("before", MAX_INT64) == MAX_INT64
    assert paging_from_json("limit", 5) == 5
    assert paging_from_json("limit", 5000) == 1000


@pytest.mark.parametrize("name,value", [
    ("since", "5"), ("since", 1.0), ("since", True), ("since", -1), ("since", MAX_INT64 + 1),
    ("limit", 0), ("limit", [1]), ("before", {"a": 1}),
])
def test_bad_json_paging_values_are_bad_frame(name, value):
    with pytest.raises(RelayError) as err:
        paging_from_json(name, value)
    assert err.value.code == "bad_frame"


def test_query_paging_values():
    assert paging_from_query("since", None) is None
    assert paging_from_query("since", "0") == 0
    assert paging_from_query("limit", "1001") == 1000


@pytest.mark.parametrize("value", ["", "-1", "1.5", "+3", " 3", "0x10", "²", "٣", str(MAX_INT64 + 1)])
def test_bad_query_paging_values_are_bad_request(value):
    with pytest.raises(RelayError) as err:
        paging_from_query("since", value)
    assert err.value.code == "bad_request"


@pytest.mark.parametrize("value", ["9" * 4301, "1" * 5000, "0" * 30 + "9223372036854775808"])
def test_query_paging_values_with_thousands_of_digits_are_bad_request(value):
    """Regression: int() refused strings over 4,300 digits with a ValueError (HTTP 500)."""
    with pytest.raises(RelayError) as err:
        paging_from_query("since", value)
    assert err.value.code == "bad_request"


def test_query_paging_values_with_many_leading_zeros_are_their_value():
    assert paging_from_query("limit", "0" * 4400 + "5") == 5
