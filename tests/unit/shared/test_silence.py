"""Producers silent while they owe answers (shared/silence.py), and how that counts in a
consumer's horizon (shared/lag.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.incoming import Incoming
from shared.lag import ConsumerLag
from shared.silence import Silences

NOW = 1_800_000_000.0
ORDERS, BILLING, INVENTORY = "oms.order.events.v1", "oms.billing.events.v1", "oms.inventory.events.v1"


def event(event_type: str, cause: EventEnvelope | None = None) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=event_type, schema_version=1, stream_id="O-1",
        stream_version=1, occurred_at=datetime.fromtimestamp(NOW, UTC), correlation_id="O-1",
        causation_id=None if cause is None else str(cause.event_id), actor=SYSTEM,
        payload={"order_id": "O-1"})


def taught() -> Silences:
    """Billing seen answering an order.confirmed with an invoice."""
    silences = Silences(owed_before_silent=3)
    confirmed = event("order.confirmed")
    silences.observe(ORDERS, confirmed, NOW)
    silences.observe(BILLING, event("invoice.issued", confirmed), NOW)
    return silences


def test_who_answers_what_is_learned_from_causation_ids() -> None:
    silences = taught()
    assert silences.answers() == {BILLING: {(ORDERS, "order.confirmed")}}
    assert silences.seconds(NOW) == {}
    placed = event("order.placed")  # an answer on the cause's own topic teaches nothing
    silences.observe(ORDERS, placed, NOW)
    silences.observe(ORDERS, event("order.confirmed", placed), NOW)
    assert silences.answers() == {BILLING: {(ORDERS, "order.confirmed")}}


def test_a_producer_owing_answers_is_silent_from_the_first_one_until_it_speaks() -> None:
    silences = taught()
    for at in (NOW + 10, NOW + 20):
        silences.observe(ORDERS, event("order.confirmed"), at)
    silences.observe(ORDERS, event("order.placed"), NOW + 25)  # billing does not answer these
    assert silences.seconds(NOW + 30) == {}  # two owed: not yet
    silences.observe(ORDERS, event("order.confirmed"), NOW + 30)
    assert silences.seconds(NOW + 70) == {BILLING: 60.0}  # since the first it owes
    silences.observe(BILLING, event("invoice.issued"), NOW + 71)  # any word from it settles
    assert silences.seconds(NOW + 100) == {}
    # what it owes is on its way, behind its backlog: the silence still holds for a minute
    assert silences.holds(NOW + 71 + 60) == {BILLING: 61.0}
    assert silences.holds(NOW + 71 + 61) == {}
    for at in (NOW + 200, NOW + 201, NOW + 202):
        silences.observe(ORDERS, event("order.confirmed"), at)
    assert silences.seconds(NOW + 200 + 86_400) == {BILLING: 3600.0}  # counts as the cap


def test_only_recent_events_teach() -> None:
    silences = Silences(recent=2)
    confirmed = event("order.confirmed")
    silences.observe(ORDERS, confirmed, NOW)
    silences.observe(INVENTORY, event("stock.reserved"), NOW)
    silences.observe(INVENTORY, event("stock.reserved"), NOW)  # the confirmation is forgotten
    silences.observe(BILLING, event("invoice.issued", confirmed), NOW)
    assert silences.answers() == {}


def incoming(topic: str, envelope: EventEnvelope, sent: float | None) -> Incoming:
    return Incoming(topic=topic, partition=0, offset=0, key=None, value=b"{}", headers={},
                    message_id=envelope.event_id, envelope=envelope,
                    timestamp_ms=None if sent is None else int(sent * 1000))


def test_a_silence_counts_in_the_horizon_like_a_late_answer() -> None:
    wall = [NOW]
    lag = ConsumerLag(wall=lambda: wall[0], silences=Silences(owed_before_silent=2))
    confirmed = event("order.confirmed")
    lag.observe([incoming(ORDERS, confirmed, NOW),
                 incoming(BILLING, event("invoice.issued", confirmed), NOW)])
    lag.observe([incoming(ORDERS, event("order.confirmed"), NOW) for _ in range(2)])
    wall[0] += 300  # billing down for five minutes while orders were confirmed
    assert lag.silent() == {BILLING: 300.0}
    assert lag.behind() == 300.0  # own lag 0: the partitions went quiet
    from services.reconcile.app import horizon_metrics

    assert horizon_metrics(lag).splitlines()[0] == "oms_reconcile_behind_seconds 300.000"
    assert horizon_metrics(lag).splitlines()[-1] == (
        f'oms_reconcile_silent_seconds{{topic="{BILLING}"}} 300.000')
    lag.observe([incoming(BILLING, event("invoice.issued"), wall[0])])
    assert lag.silent() == {} and lag.behind() == 300.0  # its answers are on their way
    wall[0] += 61
    assert lag.behind() == 0.0
    replayed = ConsumerLag(wall=lambda: wall[0], silences=Silences(owed_before_silent=1))
    replayed.observe([incoming(ORDERS, confirmed, None),  # no broker timestamps: a replay's
                      incoming(BILLING, event("invoice.issued", confirmed), None),
                      incoming(ORDERS, event("order.confirmed"), None)])
    assert replayed.silences is not None and replayed.silences.answers() == {}
    assert ConsumerLag(wall=lambda: wall[0]).silent() == {}  # not watched
