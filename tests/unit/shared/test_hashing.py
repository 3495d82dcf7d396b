"""Stable identities: the event hash chain and content ids of messages without an event id."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.contract.envelope import Actor, EventEnvelope
from shared.eventstore import chain_hash
from shared.inbox import content_id

BASE: dict[str, object] = {
    "event_id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
    "event_type": "order.placed",
    "schema_version": 1,
    "stream_id": "O-0123456789abcdef",
    "stream_version": 1,
    "occurred_at": datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
    "correlation_id": "corr-1",
    "causation_id": None,
    "actor": Actor(kind="storefront", id="tmall"),
    "payload": {"order_id": "O-0123456789abcdef", "total": "397.00", "lines": [{"sku": "X-100"}]},
}
KEY = "O-0123456789abcdef"
PREV = "a" * 64


def make(**changes: object) -> EventEnvelope:
    return EventEnvelope.model_validate({**BASE, **changes})


def test_same_input_same_hash() -> None:
    first = chain_hash(make(), KEY, PREV)
    assert first == chain_hash(make(), KEY, PREV)
    assert len(first) == 64 and int(first, 16) >= 0


def test_hash_ignores_payload_key_order_and_time_zone_spelling() -> None:
    reordered = dict(reversed(list(make().payload.items())))
    same_instant = datetime(2026, 11, 21, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert chain_hash(make(payload=reordered), KEY, PREV) == chain_hash(make(), KEY, PREV)
    assert chain_hash(make(occurred_at=same_instant), KEY, PREV) == chain_hash(make(), KEY, PREV)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": uuid.UUID("00000000-0000-4000-8000-000000000002")},
        {"event_type": "order.confirmed"},
        {"schema_version": 2},
        {"stream_id": "O-fedcba9876543210"},
        {"stream_version": 2},
        {"occurred_at": datetime(2026, 11, 21, 0, 0, 0, 1, tzinfo=UTC)},
        {"correlation_id": "corr-2"},
        {"causation_id": "cause"},
        {"actor": Actor(kind="storefront", id="jd")},
        {"actor": Actor(kind="storefront", id="tmall", role="x")},
        {"payload": {**BASE["payload"], "total": "397.01"}},  # type: ignore[dict-item]
        {"payload": {"order_id": "O-0123456789abcdef", "total": "397.00",
                     "lines": [{"sku": "X-101"}]}},
    ],
)
def test_any_field_change_changes_the_hash(change: dict[str, object]) -> None:
    assert chain_hash(make(**change), KEY, PREV) != chain_hash(make(), KEY, PREV)


def test_key_and_previous_hash_are_covered() -> None:
    original = chain_hash(make(), KEY, PREV)
    assert chain_hash(make(), "other-key", PREV) != original
    assert chain_hash(make(), KEY, "b" * 64) != original
    assert chain_hash(make(), KEY, None) != original


def test_content_id_is_stable_for_reordered_json_keys() -> None:
    one = json.dumps({"type": "order.submitted", "channel": "tmall", "lines": [{"a": 1, "b": 2}]})
    two = json.dumps({"lines": [{"b": 2, "a": 1}], "channel": "tmall", "type": "order.submitted"},
                     indent=2)
    assert content_id(one.encode()) == content_id(two.encode())
    assert content_id(one.encode()) == content_id(one.encode())


def test_content_id_differs_for_different_content() -> None:
    one = json.dumps({"channel": "tmall", "channel_order_id": "1"}).encode()
    two = json.dumps({"channel": "tmall", "channel_order_id": "2"}).encode()
    assert content_id(one) != content_id(two)
    # JSON list order is content, unlike object key order
    assert content_id(b"[1, 2]") != content_id(b"[2, 1]")


def test_content_id_of_non_json_bytes_is_stable() -> None:
    assert content_id(b"\xff\x00 not json") == content_id(b"\xff\x00 not json")
    assert content_id(b"\xff\x00 not json") != content_id(b"\xff\x01 not json")
    assert isinstance(content_id(b""), uuid.UUID)


def test_content_id_ignores_whitespace_and_unicode_escapes() -> None:
    assert content_id('{"name":"王芳"}'.encode()) == content_id(b'{ "name" : "\\u738b\\u82b3" }')
