"""ts assignment, stream ids, the delivery plan and cursors: the rules behind ordering."""
import pytest

from messaging.deliver.sequencing import Plan, advance_cursor, plan
from messaging.protocol.timestamps import id_to_ts, next_ts, ts_to_id


def test_next_ts_follows_a_moving_clock():
    assert next_ts(1_000, None) == 1_000
    assert next_ts(2_000, 1_000) == 2_000


def test_next_ts_is_strictly_increasing_under_a_frozen_clock():
    last = None
    seen = []
    for _ in range(5):
        last = next_ts(1_000, last)
        seen.append(last)
    assert seen == [1_000, 1_001, 1_002, 1_003, 1_004]


def test_next_ts_is_strictly_increasing_when_the_clock_steps_back():
    assert next_ts(500, 1_000) == 1_001


@pytest.mark.parametrize("ts", [0, 1, 999_999, 1_000_000, 1764400000123456789, 2**63 - 1])
def test_stream_ids_round_trip(ts):
    assert id_to_ts(ts_to_id(ts)) == ts


def test_stream_id_format_matches_the_protocol_example():
    assert ts_to_id(1764400000123456789) == "1764400000123-456789"


def test_stream_id_order_is_ts_order():
    tss = [999_999, 1_000_000, 1_000_001, 2_999_999, 3_000_000]
    ids = [tuple(map(int, ts_to_id(t).split("-"))) for t in tss]
    assert ids == sorted(ids)


@pytest.mark.parametrize("last,ts,prev,expected", [
    (10, 10, 5, Plan.DROP),      # redelivered
    (10, 7, 5, Plan.DROP),       # older than what was sent
    (10, 20, 10, Plan.DELIVER),  # next in line
    (10, 20, 3, Plan.DELIVER),   # nothing between 10 and 20 exists (since past a real ts)
    (10, 30, 20, Plan.FILL),     # 20 has not arrived yet
    (0, 30, 20, Plan.FILL),
])
def test_delivery_plan(last, ts, prev, expected):
    assert plan(last, ts, prev) is expected


def test_cursor_only_moves_forward():
    assert advance_cursor(None, 5) == 5
    assert advance_cursor(5, 9) == 9
    assert advance_cursor(9, 5) == 9


def test_nats_url_may_name_a_cluster():
    from messaging.state.backends import nats_servers

    assert nats_servers("nats://a:4222") == ["nats://a:4222"]
    assert nats_servers("nats://a:1, nats://b:2,nats://c:3,") == ["nats://a:1", "nats://b:2", "nats://c:3"]
