"""Reconcile tells ops once when a service has owed answers past the grace without a word, and
again when it answers (``tell_silences``)."""

from __future__ import annotations

from datetime import timedelta

from services.reconcile.handlers import tell_silences
from shared.contract.envelope import EventEnvelope
from shared.incoming import Incoming
from shared.lag import ConsumerLag
from shared.silence import Silences
from tests.unit.shared.test_silence import BILLING, NOW, ORDERS, event, incoming

GRACE = timedelta(seconds=60)


def heard(topic: str, event_type: str, cause: EventEnvelope | None = None) -> Incoming:
    return incoming(topic, event(event_type, cause), NOW)


class Lines:
    def __init__(self) -> None:
        self.lines: list[dict[str, object]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append({"log_level": "warning", "event": event, **fields})

    def info(self, event: str, **fields: object) -> None:
        self.lines.append({"log_level": "info", "event": event, **fields})


def test_a_silence_past_the_grace_is_told_once_and_its_end_too() -> None:
    wall = [NOW]
    lag = ConsumerLag(wall=lambda: wall[0], silences=Silences(owed_before_silent=1))
    confirmed = heard(ORDERS, "order.confirmed")
    assert confirmed.envelope is not None
    lag.observe([confirmed, heard(BILLING, "invoice.issued", confirmed.envelope)])
    lag.observe([heard(ORDERS, "order.confirmed")])
    out = Lines()
    wall[0] += 30
    told = tell_silences(lag, GRACE, set(), out)  # silent, not yet past the grace
    assert told == set()
    wall[0] += 40
    told = tell_silences(lag, GRACE, told, out)
    told = tell_silences(lag, GRACE, told, out)  # said once
    assert told == {BILLING}
    lag.observe([heard(BILLING, "invoice.issued")])
    told = tell_silences(lag, GRACE, told, out)
    assert told == set()
    logs = out.lines
    assert [(line["log_level"], line["event"], line.get("topic")) for line in logs] == [
        ("warning", "a service owes answers and says nothing: discrepancies about it wait",
         BILLING),
        ("info", "a silent service answers again", BILLING)]
    assert logs[0]["silent_seconds"] == 70.0
