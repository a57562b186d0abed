import pytest

from messaging.protocol.timeparse import format_ts, parse_time

NOW = 1_764_400_000_000_000_000  # 2025-11-29T07:06:40Z


@pytest.mark.parametrize("text,expected", [
    ("0", 0),
    ("1764400000123456789", 1764400000123456789),
    ("15m", NOW - 15 * 60 * 10**9),
    ("2h", NOW - 2 * 3600 * 10**9),
    ("7d", NOW - 7 * 86400 * 10**9),
    ("2025-11-29T07:06:40Z", NOW),
    ("2025-11-29T07:06:40", NOW),
    ("2025-11-29T08:06:40+01:00", NOW),
    ("2025-11-29T07:06:40.5Z", NOW + 500_000_000),
    ("2025-11-29", NOW - (7 * 3600 + 6 * 60 + 40) * 10**9),
])
def test_times(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "5x", "1.5h", "9223372036854775808", "²", "1969-01-01"])
def test_bad_times_raise_value_error_with_a_reason(text):
    with pytest.raises(ValueError) as err:
        parse_time(text, NOW)
    assert str(err.value)


def test_format_ts():
    assert format_ts(1764400000123456789) == "2025-11-29 07:06:40.123456 UTC"
