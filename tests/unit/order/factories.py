"""Orders for domain tests, built through the same decisions the service uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.order.domain import approval as rules
from services.order.domain import lifecycle
from services.order.domain.state import OrderState, evolve
from shared.contract.payloads import OrderLine, OrderPlaced, Payload

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TWO_LEVELS = rules.ApprovalPlan(
    rule_id="big-orders", rules_version="2026-11-01",
    levels=(rules.ApprovalLevel("sales_director", timedelta(hours=4), "general_manager"),
            rules.ApprovalLevel("finance_director", timedelta(hours=4), "general_manager")),
    reasons=("total is at least 100000",))


def lines(*spec: tuple[str, int, str] | tuple[str, int, str, str]) -> list[OrderLine]:
    return [OrderLine(line_no=i + 1, sku=s[0], name=s[0], quantity=s[1], unit_price=Decimal(s[2]),
                      tax_rate=Decimal("0.13"), gift_bundle=s[3] if len(s) > 3 else None)
            for i, s in enumerate(spec)]


def placed(order_type: str = "standard", terms: str = "prepaid", order_lines: list[OrderLine] | None = None,
           **payment: Any) -> OrderPlaced:
    order_lines = order_lines or lines(("X-100", 2, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    subtotal = sum((x.unit_price * x.quantity for x in order_lines), Decimal(0))
    extra: dict[str, Any] = {}
    if order_type == "group_buy":
        extra["group_buy"] = {"group_id": "G1", "size": 3}
    return OrderPlaced(
        order_id="O-TEST000000000001", channel="tmall", channel_order_id="TM-1", order_type=order_type,
        submitted_at=NOW, customer={"id": "C-1", "name": "王芳", "tier": "regular"},
        shipping_address={"recipient": "王芳", "phone": "+8613800138000", "country": "CN",
                          "city": "杭州市", "line1": "文三路 100 号"},
        lines=order_lines, shipping_fee=Decimal("12.00"), currency="CNY", subtotal=subtotal,
        discount_total=Decimal("0"), total=subtotal + Decimal("12.00"),
        payment={"method": "alipay", "terms": terms, **payment}, content_hash="h", **extra)


def apply(state: OrderState, events: list[Payload], at: datetime = NOW) -> OrderState:
    for event in events:
        state = evolve(state, event.event_type, event.wire(), state.version + 1, at)
    return state


def new_order(order_type: str = "standard", terms: str = "prepaid", plan: rules.ApprovalPlan | None = None,
              reserved: bool = False, **kwargs: Any) -> OrderState:
    order = placed(order_type, terms, **kwargs)
    state = OrderState(order.order_id)
    return apply(state, lifecycle.place(state, order, plan, NOW, lifecycle.Readiness(reserved=reserved)))
