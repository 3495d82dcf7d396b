"""Time travel over an order's events: the status and timeline at any instant, from the log alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.history import fold_history, next_status

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def row(version: int, minutes: int, event_type: str, **payload: Any
        ) -> tuple[int, datetime, str, int, str, dict[str, Any]]:
    return (version, T0 + timedelta(minutes=minutes), event_type, 1, "system:oms",
            {"order_id": "O-1", **payload})


LOG = [
    row(1, 0, "order.placed", channel="tmall", channel_order_id="TM-1", total="398.00",
        currency="CNY", lines=[{"sku": "X-100", "quantity": 2, "unit_price": "199.00",
                                "line_no": 1}], customer={"id": "C-1"}),
    row(2, 1, "order.confirmed", total="398.00", currency="CNY"),
    row(3, 5, "order.approval_requested", kind="amendment", request_id="A-1"),
    row(4, 10, "order.paid", paid_amount="398.00", currency="CNY"),
    row(5, 60, "order.shipped", complete=False),
    row(6, 90, "order.shipped", complete=True),
]


def test_status_and_timeline_as_of_an_instant() -> None:
    history = fold_history("O-1", LOG, T0 + timedelta(minutes=7))
    assert history.status == "confirmed"  # an amendment's approval leaves the order confirmed
    assert history.version == 3
    assert [e.event_type for e in history.timeline] == [
        "order.placed", "order.confirmed", "order.approval_requested"]
    assert history.facts["total"] == "398.00"
    assert "paid_amount" not in history.facts


def test_now_shows_everything() -> None:
    history = fold_history("O-1", LOG, None)
    assert [e.status for e in history.timeline] == [
        "placed", "confirmed", "confirmed", "paid", "partially_shipped", "shipped"]
    assert history.facts["paid_amount"] == "398.00"


def test_before_the_order_existed() -> None:
    history = fold_history("O-1", LOG, T0 - timedelta(seconds=1))
    assert history.timeline == [] and history.status == "not placed yet"


def test_cancelled_stays_cancelled() -> None:
    assert next_status("cancelled", "order.paid", {}) == "cancelled"
    assert next_status("placed", "order.approval_requested", {"kind": "order"}) == "pending_approval"


def test_an_amendment_raising_a_paid_orders_total_shows_it_owing_until_paid_again() -> None:
    def amended(version: int, minutes: int, before: str, after: str):
        return row(version, minutes, "order.amended", request_id=f"A-{version}", before={},
                   after={"total": after}, total_before=before, total_after=after, currency="CNY")

    log = [*LOG[:2], LOG[3], amended(4, 20, "398.00", "597.00"),
           row(5, 30, "order.paid", paid_amount="597.00", currency="CNY"),
           amended(6, 40, "597.00", "398.00")]
    history = fold_history("O-1", log, None)
    assert [e.status for e in history.timeline] == [
        "placed", "confirmed", "paid", "confirmed", "paid", "paid"]
    assert history.facts["paid_amount"] == "597.00"
