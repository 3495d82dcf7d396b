"""Stored order.placed v1 events still load, through the named upcaster, into today's payload model."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from shared.contract.payloads import OrderPlaced
from shared.upcasting import UPCASTERS, latest_version, upcast, upcast_order_placed_v1_v2, upcaster

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "events_v1.jsonl"


def v1_events() -> list[dict[str, object]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]


def test_fixture_holds_v1_order_placed_events() -> None:
    events = v1_events()
    assert len(events) == 3
    assert {(e["event_type"], e["schema_version"]) for e in events} == {("order.placed", 1)}


@pytest.mark.parametrize("event", v1_events(), ids=lambda e: str(e["stream_id"]))
def test_v1_events_load_into_the_current_model(event: dict[str, object]) -> None:
    raw = event["payload"]
    assert isinstance(raw, dict)
    version, payload = upcast("order.placed", 1, raw)
    placed = OrderPlaced.model_validate(payload)
    assert version == 2
    assert placed.customer["tier"] == raw["customer_tier"]
    assert [line.line_no for line in placed.lines] == list(range(1, len(raw["lines"]) + 1))
    assert [line.unit_price for line in placed.lines] == [Decimal(x["price"]) for x in raw["lines"]]
    assert placed.flags == []
    assert placed.customs is None and placed.group_buy is None
    assert placed.total == Decimal(raw["total"])
    assert "customer_tier" in raw, "the stored payload itself is never changed"


def test_upcasting_a_current_payload_changes_nothing() -> None:
    _, once = upcast("order.placed", 1, v1_events()[0]["payload"])  # type: ignore[arg-type]
    assert upcast_order_placed_v1_v2(json.loads(json.dumps(once))) == once


def test_types_without_upcasters_pass_through() -> None:
    payload = {"order_id": "O-1", "total": "1.00", "currency": "CNY"}
    assert upcast("order.confirmed", 1, payload) == (1, payload)
    assert latest_version("order.placed") == 2
    assert latest_version("order.placed", 2) == 2


def test_a_second_upcaster_for_the_same_step_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        upcaster("order.placed", 1)(lambda payload: payload)
    assert ("order.placed", 1) in UPCASTERS
