"""A poison envelope must become a dead letter, never an exception that blocks its partition."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.topics import ORDER_EVENTS
from shared.inbox import incoming_from_record


def record(payload: dict[str, object]) -> SimpleNamespace:
    envelope = EventEnvelope(event_id=uuid.uuid4(), event_type="order.placed", schema_version=1,
                             stream_id="O-1", stream_version=1, occurred_at=datetime.now(UTC),
                             correlation_id="O-1", actor=SYSTEM, payload=payload)
    return SimpleNamespace(topic=ORDER_EVENTS, partition=0, offset=7, key=b"O-1",
                           value=envelope.to_json(), headers=[])


def test_an_envelope_that_is_not_json_is_a_decode_error() -> None:
    bad = SimpleNamespace(topic=ORDER_EVENTS, partition=0, offset=1, key=None,
                          value=b'{"event_id": "x', headers=[])
    assert incoming_from_record(bad, envelopes=True).decode_error


def test_a_payload_the_upcaster_cannot_read_with_a_value_error_is_a_decode_error() -> None:
    message = incoming_from_record(record({"order_id": "O-1", "lines": "not a list"}), envelopes=True)
    assert message.decode_error


@pytest.mark.parametrize("payload", [{"order_id": "O-1", "lines": [1]},
                                     {"order_id": "O-1", "customer": 5, "lines": []}],
                         ids=["line is a number", "customer is a number"])
def test_a_payload_the_upcaster_cannot_read_is_a_decode_error_not_an_exception(
        payload: dict[str, object]) -> None:
    message = incoming_from_record(record(payload), envelopes=True)
    assert message.decode_error and json.loads(message.value)["payload"] == payload
