"""The worker's batching rule: events grouped by user, arrival order kept per user."""
from dataclasses import dataclass

from messaging.events import subject_for, user_of_subject
from messaging.worker import group_by_user


@dataclass
class Msg:
    subject: str
    data: bytes


def test_group_by_user_keeps_arrival_order_within_each_user():
    msgs = [Msg(subject_for(u), d) for u, d in [("a", b"1"), ("b", b"2"), ("a", b"3"), ("c", b"4"), ("a", b"5")]]
    grouped = group_by_user(msgs)
    assert list(grouped) == ["a", "b", "c"]
    assert [m.data for m in grouped["a"]] == [b"1", b"3", b"5"]
    assert [m.data for m in grouped["b"]] == [b"2"]
    assert sum(len(v) for v in grouped.values()) == len(msgs)


def test_user_of_subject_inverts_subject_for():
    for user in ("a", "g82p0dd24smsmtk", "user_with_underscore-1"):
        assert user_of_subject(subject_for(user)) == user
