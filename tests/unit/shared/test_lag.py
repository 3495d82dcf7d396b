"""How far behind a consumer is, from the broker timestamps of what it handles (shared/lag.py)."""

from __future__ import annotations

import uuid

from shared.incoming import Incoming
from shared.lag import ConsumerLag

NOW = 1_800_000_000.0  # seconds since the epoch


class Wall:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def message(topic: str, partition: int, sent: float | None) -> Incoming:
    return Incoming(topic=topic, partition=partition, offset=0, key=None, value=b"{}", headers={},
                    message_id=uuid.uuid4(),
                    timestamp_ms=None if sent is None else int(sent * 1000))


def test_the_largest_age_of_the_newest_message_per_partition() -> None:
    wall = Wall()
    lag = ConsumerLag(wall=wall)
    assert lag.behind() == 0.0  # never told: not behind
    lag.observe([message("a", 0, NOW - 300), message("a", 0, NOW - 240),  # newest of a/0: 240 s
                 message("a", 1, NOW - 2), message("b", 0, NOW - 30)])
    assert lag.behind() == 240.0
    lag.observe([message("a", 0, NOW - 1)])  # a/0 caught up; b/0 still 30 s behind
    assert lag.behind() == 30.0


def test_a_partition_not_heard_from_lately_counts_as_caught_up() -> None:
    wall = Wall()
    lag = ConsumerLag(fresh_for=5.0, wall=wall)
    lag.observe([message("a", 0, NOW - 120)])
    wall.now += 5.0
    assert lag.behind() == 120.0
    wall.now += 0.5  # a partition with a backlog delivers in every fetch: this one has none left
    assert lag.behind() == 0.0


def test_messages_without_a_broker_timestamp_and_clocks_ahead_say_nothing_behind() -> None:
    lag = ConsumerLag(wall=Wall())
    lag.observe([message("a", 0, None)])  # a replay's messages
    assert lag.behind() == 0.0
    lag.observe([message("a", 0, NOW + 3)])  # the producer's clock ahead of this host's
    assert lag.behind() == 0.0
