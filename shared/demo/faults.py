"""The fault the demo injects: billing is down while an order ships. Reconcile must notice past
its grace period ("shipped but revenue not recognised") and see it resolved once billing is back."""

from __future__ import annotations

from typing import Any, Protocol

from shared.demo.plan import DemoPlan
from shared.demo.scenarios import Operator, Outcome, until
from shared.demo.warehouse import WAREHOUSE, WarehouseDay

KIND = "shipped_revenue_not_recognised"


class Services(Protocol):
    def stop_service(self, service: str) -> None: ...

    def start_service(self, service: str) -> None: ...

    def wait_healthy(self, timeout: float = 120.0, services: Any = None) -> None: ...


def plan_fault(plan: DemoPlan, day: WarehouseDay) -> Outcome | None:
    taken = {m["channel_order_id"] for m in day.ship} | (
        {day.cancelled["channel_order_id"]} if day.cancelled else set())
    spare = [m for m in plan.standard if m["channel_order_id"] not in taken]
    if not spare:
        return None
    victim = spare[-1]
    day.units_shipped += sum(line["quantity"] for line in victim["lines"])
    return Outcome("fault", "billing down while it shipped: discrepancy raised, then resolved",
                   victim, "shipped")


def _discrepancies(operator: Operator, reconcile_url: str, order_id: str, open_only: bool
                   ) -> list[dict[str, Any]]:
    response = operator.client.get(f"{reconcile_url}/discrepancies", headers={"X-API-Key": "demo-admin"},
                                   params={"open": str(open_only).lower(), "order_id": order_id,
                                           "kind": KIND})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["discrepancies"]
    return found


def run_fault(operator: Operator, services: Services, reconcile_url: str, outcome: Outcome) -> None:
    message = outcome.message
    order_id = operator.wait(message, lambda f: bool(f["order"]["paid"]), timeout=120)["order"]["order_id"]
    services.stop_service("billing")
    try:
        operator.client.post(f"{operator.url}/orders/{order_id}/shipments", headers=WAREHOUSE, json={
            "warehouse": "WH-SHANGHAI", "carrier": "JD Logistics", "tracking_number": "JDFAULT0001"},
        ).raise_for_status()
        outcome.steps.append("billing stopped; order shipped")
        detected = until(lambda: _discrepancies(operator, reconcile_url, order_id, True), 120,
                          "discrepancy")
        outcome.steps.append(f"reconcile raised {KIND} (since {detected[0].get('since', '?')})")
    finally:
        services.start_service("billing")
    services.wait_healthy(timeout=120, services=["billing"])
    until(lambda: [d for d in _discrepancies(operator, reconcile_url, order_id, False)
                    if d.get("resolved_at")], 120, "resolution")
    outcome.steps.append("billing restarted, revenue recognised: discrepancy resolved")
