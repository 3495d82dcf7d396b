"""The event envelope: a lossless JSON round trip, and instants always carry an offset."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.contract.envelope import SYSTEM, Actor, EventEnvelope, canonical_time

SHANGHAI = timezone(timedelta(hours=8))


def envelope(**changes: object) -> EventEnvelope:
    fields: dict[str, object] = {
        "event_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "event_type": "order.confirmed",
        "schema_version": 1,
        "stream_id": "O-0123456789abcdef",
        "stream_version": 3,
        "occurred_at": datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=SHANGHAI),
        "correlation_id": "corr-1",
        "causation_id": "cause-1",
        "actor": Actor(kind="user", id="u-7", role="finance"),
        "payload": {"order_id": "O-0123456789abcdef", "total": "397.00", "currency": "CNY",
                    "nested": {"名": "王芳", "lines": [1, 2]}},
    }
    fields.update(changes)
    return EventEnvelope.model_validate(fields)


def test_json_round_trip_is_lossless() -> None:
    original = envelope()
    again = EventEnvelope.from_json(original.to_json())
    assert again == original
    assert again.occurred_at == original.occurred_at
    assert again.occurred_at.utcoffset() == timedelta(hours=8)
    assert again.order_id == "O-0123456789abcdef"
    assert EventEnvelope.from_json(original.to_json().decode()) == original


def test_wire_shape_names_every_contract_field() -> None:
    doc = json.loads(envelope().to_json())
    assert set(doc) == {"event_id", "event_type", "schema_version", "stream_id", "stream_version",
                        "occurred_at", "correlation_id", "causation_id", "actor", "payload"}
    assert doc["actor"] == {"kind": "user", "id": "u-7", "role": "finance"}
    assert doc["occurred_at"].endswith("+08:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        envelope(occurred_at=datetime(2026, 11, 21, 8, 0))
    naive = json.loads(envelope().to_json())
    naive["occurred_at"] = "2026-11-21T08:00:00"
    with pytest.raises(ValidationError):
        EventEnvelope.from_json(json.dumps(naive))


def test_invalid_envelopes_are_refused() -> None:
    with pytest.raises(ValueError):
        EventEnvelope.from_json(b"not json")
    with pytest.raises(ValidationError):
        envelope(stream_version=0)
    with pytest.raises(ValidationError):
        envelope(actor={"kind": "robot", "id": "x"})


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    doc = json.loads(envelope().to_json())
    doc["added_later"] = "x"
    assert EventEnvelope.from_json(json.dumps(doc)) == envelope()


def test_order_id_only_when_payload_names_one() -> None:
    assert envelope(payload={"sku": "X-100"}).order_id is None
    assert envelope(payload={"order_id": 7}).order_id is None


def test_canonical_time_is_one_spelling_per_instant() -> None:
    local = datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)
    utc = local.astimezone(UTC)
    assert canonical_time(local) == canonical_time(utc) == "2026-11-21T00:00:00.000000+00:00"


def test_system_actor() -> None:
    assert SYSTEM.kind == "system"
