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


def test_a_message_that_is_no_envelope_is_told_field_by_field() -> None:
    """A dead letter's error names each wrong field and what an envelope needs, without
    pydantic's echo of the whole input or its links (they buried the reason in `oms dlq list`)."""
    from shared.incoming import decode_message

    def error_of(value: bytes) -> str:
        message = decode_message("oms.order.events.v1", 0, 7, "O-1", value, {}, envelopes=True)
        assert message.envelope is None and message.decode_error is not None
        return message.decode_error

    missing = error_of(b'{"event_type": "order.placed", "stream_version": 0, "garbage": true}')
    assert missing.startswith("not an oms event envelope: event_id: Field required; ")
    assert "stream_version: Input should be greater than or equal to 1" in missing
    assert ("(an envelope has event_id, event_type, schema_version, stream_id, stream_version, "
            "occurred_at, correlation_id, actor, payload; optional: causation_id)") in missing
    assert "garbage" not in missing and "errors.pydantic.dev" not in missing
    assert error_of(b"\xff\xfe not json") == (
        "not an oms event envelope: Invalid JSON: expected value at line 1 column 1")
    wrong = error_of(b'{"event_id": "x"}')
    assert "event_id: Input should be a valid UUID" in wrong and "input_value" not in wrong
