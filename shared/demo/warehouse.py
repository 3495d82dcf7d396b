"""The demo's second half of the day: the warehouse ships and delivers, a customer returns goods,
a paid order is cancelled (refunded, stock released)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.demo.plan import DemoPlan, cancel_after_payment, encode
from shared.demo.scenarios import Operator, Outcome

WAREHOUSE = {"X-API-Key": "demo-warehouse"}


@dataclass
class WarehouseDay:
    ship: list[dict[str, Any]] = field(default_factory=list)
    deliver: list[dict[str, Any]] = field(default_factory=list)
    returned: dict[str, Any] | None = None
    cancelled: dict[str, Any] | None = None
    units_shipped: int = 0
    units_returned: int = 0


def plan_warehouse(plan: DemoPlan) -> tuple[WarehouseDay, list[Outcome]]:
    """Ship about a tenth of the ordinary orders, deliver half of those, return one unit, cancel one
    paid order. Chosen among the day's ordinary orders, so the counts are known in advance."""
    day = WarehouseDay()
    ordinary = plan.standard
    count = max(2, len(ordinary) // 10)
    day.ship = ordinary[1:1 + count]
    day.deliver = day.ship[: max(2, count // 2)]  # at least one delivered and one returned
    day.returned = day.deliver[0]
    day.cancelled = ordinary[1 + count] if len(ordinary) > 1 + count else None
    day.units_shipped = sum(line["quantity"] for m in day.ship for line in m["lines"])
    day.units_returned = 1
    outcomes = [Outcome("shipped", f"shipped and delivered ({len(day.deliver)} orders)", day.deliver[1],
                        "delivered"),
                Outcome("returned", "delivered, one unit returned: credit note and refund",
                        day.returned, "returned")]
    if day.cancelled is not None:
        cancel_after_payment(plan, day.cancelled)
        outcomes.append(Outcome("cancelled_paid", "paid, then cancelled: refunded, stock released",
                                day.cancelled, "cancelled"))
    return day, outcomes


def _paid(found: dict[str, Any]) -> bool:
    return bool(found["order"]["paid"])


def run_warehouse(operator: Operator, day: WarehouseDay, outcomes: list[Outcome]) -> None:
    for number, message in enumerate(day.ship, start=1):
        found = operator.wait(message, _paid, timeout=120)
        order_id = found["order"]["order_id"]
        operator.client.post(f"{operator.url}/orders/{order_id}/shipments", headers=WAREHOUSE, json={
            "warehouse": "WH-HANGZHOU", "carrier": "SF Express",
            "tracking_number": f"SF{number:010d}"}).raise_for_status()
    for message in day.deliver:
        order_id = operator.wait(message, lambda f: f["order"]["status"] == "shipped")["order"]["order_id"]
        operator.client.post(f"{operator.url}/orders/{order_id}/delivery",
                             headers=WAREHOUSE).raise_for_status()
    by_key = {o.key: o for o in outcomes}
    if day.returned is not None:
        message = day.returned
        order_id = operator.wait(message, lambda f: f["order"]["status"] == "delivered")["order"]["order_id"]
        line = message["lines"][0]
        operator.send([encode({"type": "return.requested", "channel": message["channel"],
                               "channel_order_id": message["channel_order_id"],
                               "request_id": "DEMO-RETURN-1", "reason": "arrived damaged",
                               "requested_at": datetime.fromisoformat(message["submitted_at"]).isoformat(),
                               "lines": [{"sku": line["sku"], "quantity": 1}]})])
        operator.wait(message, lambda f: f["order"]["status"] == "return_requested")
        operator.client.post(f"{operator.url}/orders/{order_id}/returns/DEMO-RETURN-1/receive",
                             headers=WAREHOUSE, json={"warehouse": "WH-HANGZHOU"}).raise_for_status()
        by_key["returned"].steps.append(f"1 x {line['sku']} back in WH-HANGZHOU")
    if day.cancelled is not None:
        message = day.cancelled
        operator.wait(message, _paid, timeout=120)
        operator.send([encode({"type": "order.cancellation_requested", "channel": message["channel"],
                               "channel_order_id": message["channel_order_id"],
                               "request_id": "DEMO-CANCEL-PAID", "reason": "ordered twice by mistake",
                               "requested_at": message["submitted_at"]})])
        operator.wait(message, lambda f: f["order"]["status"] == "cancelled")
        by_key["cancelled_paid"].steps.append("cancelled after payment, before shipment")
