"""The standalone export verifier finds a changed payload, a broken link and a missing event."""

from __future__ import annotations

import copy
from typing import Any

from shared.audit.export import csv_header, csv_line
from shared.audit.verify_export import event_hash, first_problem, read_export


def chain(count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    previous: str | None = None
    for version in range(1, count + 1):
        event: dict[str, Any] = {
            "service": "order", "event_id": f"id-{version}", "event_type": "order.paid",
            "schema_version": 1, "stream_id": "O-1", "stream_version": version,
            "occurred_at": "2026-11-21T00:00:00.000000+00:00", "correlation_id": "c",
            "causation_id": None, "actor": {"kind": "system", "id": "oms", "role": None},
            "payload": {"order_id": "O-1", "note": "王芳"}, "key": "O-1", "prev_hash": previous,
        }
        event["hash"] = event_hash(event)
        previous = event["hash"]
        events.append(event)
    return events


def test_an_intact_chain_passes_and_each_kind_of_damage_is_named() -> None:
    events = chain(3)
    assert first_problem(events) is None
    edited = copy.deepcopy(events)
    edited[1]["payload"]["note"] = "someone else"
    assert "hash does not match" in str(first_problem(edited))
    assert "missing" in str(first_problem([events[0], events[2]]))


def test_csv_round_trip_keeps_the_hashes() -> None:
    events = chain(2)
    text = csv_header() + "".join(csv_line({**e, "position": 1, "tx_id": "1", "recorded_at": ""})
                                  for e in events)
    assert first_problem(list(read_export(text.splitlines(keepends=True), True))) is None
