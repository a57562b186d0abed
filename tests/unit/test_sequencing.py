"""Stream ids and the delivery plan: the rules behind ordering (the ts assignment and the
cursor merge are Lua that production runs: tests/integration/test_history_store.py)."""
import pytest

from messaging.deliver.sequencing import Plan, plan
from messaging.protocol.timestamps import id_to_ts, ts_to_id


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
