"""How far behind a consumer is, from the broker timestamps of what it handles (shared/lag.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from shared.contract.envelope import SYSTEM, EventEnvelope
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


def answer(topic: str, sent: float, event_id: uuid.UUID, occurred: float,
           cause: uuid.UUID | None) -> Incoming:
    envelope = EventEnvelope(
        event_id=event_id, event_type="order.paid", schema_version=1, stream_id="O-1",
        stream_version=1, occurred_at=datetime.fromtimestamp(occurred, UTC),
        correlation_id="O-1", causation_id=None if cause is None else str(cause), actor=SYSTEM,
        payload={"order_id": "O-1"})
    return replace(message(topic, 0, sent), envelope=envelope, message_id=event_id)


def test_a_producer_answering_late_counts_while_its_answers_keep_coming() -> None:
    wall = Wall()
    lag = ConsumerLag(wall=wall, remember=10, answers_fresh_for=60.0, cap=900.0, sample=1)
    payment, paid = uuid.uuid4(), uuid.uuid4()
    lag.observe([answer("billing", NOW - 1, payment, NOW - 130, None)])  # billing: at once
    assert lag.behind() == 1.0
    lag.observe([answer("orders", NOW - 0.5, paid, NOW - 1, payment)])  # 129 s after the payment
    assert lag.behind() == 1.0 + 129.0
    wall.now += 61  # no answer from the order service for a minute: no news of its pace
    assert lag.behind() == 0.0


def test_answers_are_timed_only_to_remembered_causes_and_capped() -> None:
    wall = Wall()
    forgetful = ConsumerLag(wall=wall, remember=1, sample=1)
    old, newer = uuid.uuid4(), uuid.uuid4()
    forgetful.observe([answer("inventory", NOW, old, NOW - 10, None),
                       answer("billing", NOW, newer, NOW - 10, None)])  # only the last is kept
    forgetful.observe([answer("orders", NOW, uuid.uuid4(), NOW, old)])  # its cause forgotten
    assert forgetful.behind() == 0.0

    lag = ConsumerLag(wall=wall, remember=10, cap=600.0, sample=1)
    lag.observe([answer("billing", NOW, newer, NOW - 10, None)])
    late = uuid.uuid4()
    lag.observe([answer("orders", NOW, late, NOW, newer)])
    assert lag.behind() == 10.0
    lag.observe([answer("inventory", NOW, uuid.uuid4(), NOW + 86_400, late)])  # a day later:
    assert lag.behind() == 600.0  # counts as the cap
    replay = ConsumerLag(wall=wall, remember=10, sample=1)  # no broker timestamps: nothing is timed
    replay.observe([replace(answer("billing", NOW, newer, NOW - 10, None), timestamp_ms=None),
                    replace(answer("orders", NOW, late, NOW, newer), timestamp_ms=None)])
    assert replay.behind() == 0.0


def test_one_event_in_sample_is_remembered_by_its_id() -> None:
    lag = ConsumerLag(wall=Wall(), remember=1000, sample=4)
    ids = [uuid.uuid4() for _ in range(400)]
    lag.observe([answer("billing", NOW, i, NOW, None) for i in ids])
    assert set(lag._seen) == {str(i) for i in ids if i.int % 4 == 0}


def test_the_horizon_is_shown_by_part_and_by_late_answer() -> None:
    """/metrics: reconcile's own lag and which producer's answers come late (the grace's extra)."""
    from services.reconcile.app import horizon_metrics

    wall = Wall()
    lag = ConsumerLag(wall=wall, remember=10, answers_fresh_for=60.0, cap=900.0, sample=1)
    payment, paid = uuid.uuid4(), uuid.uuid4()
    lag.observe([answer("oms.billing.events.v1", NOW - 2, payment, NOW - 100, None),
                 answer("oms.order.events.v1", NOW - 1, paid, NOW - 10, payment)])
    assert lag.own() == 2.0
    assert lag.answer_times() == {("oms.order.events.v1", "order.paid"): 90.0}
    assert horizon_metrics(lag).splitlines() == [
        "oms_reconcile_behind_seconds 92.000", "oms_reconcile_consumer_lag_seconds 2.000",
        "oms_reconcile_other_instances_behind_seconds 0.000",
        'oms_reconcile_answer_seconds{topic="oms.order.events.v1",event_type="order.paid"} 90.000']
    wall.now += 61
    assert horizon_metrics(lag).splitlines() == [
        "oms_reconcile_behind_seconds 0.000", "oms_reconcile_consumer_lag_seconds 0.000",
        "oms_reconcile_other_instances_behind_seconds 0.000"]
    lag.hear_elsewhere(45.0)  # another instance is behind: its figure counts here too
    assert horizon_metrics(lag).splitlines()[0::2] == [
        "oms_reconcile_behind_seconds 45.000", "oms_reconcile_other_instances_behind_seconds 45.000"]


def test_the_other_instances_report_counts_while_fresh() -> None:
    """Several instances of a consumer: the largest of this one's figure and the others' latest
    report, the latter only for ``elsewhere_fresh_for`` seconds after it was heard."""
    wall = Wall()
    lag = ConsumerLag(fresh_for=5.0, elsewhere_fresh_for=10.0, wall=wall)
    lag.observe([message("a", 0, NOW - 30)])
    assert lag.elsewhere() == 0.0 and lag.behind() == 30.0  # nothing heard: its own figure
    lag.hear_elsewhere(120.0)
    assert (lag.local(), lag.elsewhere(), lag.behind()) == (30.0, 120.0, 120.0)
    lag.hear_elsewhere(-3.0)  # a clock ahead says nothing behind, never less
    assert lag.elsewhere() == 0.0 and lag.behind() == 30.0
    lag.hear_elsewhere(120.0)
    wall.now += 10.0
    assert lag.behind() == 120.0
    wall.now += 0.5  # the others stopped reporting (crashed, stopped): their figure ages out
    assert lag.elsewhere() == 0.0 and lag.behind() == 0.0  # and a/0 was not heard from either
