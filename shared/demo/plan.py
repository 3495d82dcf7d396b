"""What one demo day sends and what every service should agree on afterwards."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.demo import traffic


def message_key(message: dict[str, Any]) -> bytes:
    return f"{message.get('channel', '')}:{message.get('channel_order_id', '')}".encode()


def encode(message: dict[str, Any]) -> tuple[bytes, bytes]:
    return message_key(message), json.dumps(message, ensure_ascii=False).encode()


@dataclass
class DemoPlan:
    """The traffic of one demo day and the totals every service should end up agreeing on."""

    start: datetime
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value), in order
    orders: int = 0
    paid_orders: int = 0
    cancelled_orders: int = 0
    payments: int = 0
    amount_active: Decimal = Decimal("0.00")  # what customers owe for orders not cancelled
    units: int = 0
    units_by_sku: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    bad_kinds: list[str] = field(default_factory=list)
    duplicates: int = 0
    standard: list[dict[str, Any]] = field(default_factory=list)  # the day's ordinary orders
    units_cancelled: int = 0
    never_invoiced: int = 0  # cancelled before confirmation

    @property
    def rejections(self) -> int:
        return len(self.bad_kinds)

    def add_order(self, message: dict[str, Any], *, payments: list[dict[str, Any]] | None = None,
                  cancelled: bool = False, publish: bool = True) -> None:
        """Count an order the services will see (and publish it now unless a scenario does)."""
        if publish:
            self.messages.append(encode(message))
        self.orders += 1
        self.channels[message["channel"]] += 1
        for line in message["lines"]:
            self.units_by_sku[traffic.canonical(line["sku"])] += line["quantity"]
            self.units += line["quantity"]
        if cancelled:
            self.cancelled_orders += 1
            self.never_invoiced += 1
            self.units_cancelled += sum(line["quantity"] for line in message["lines"])
        else:
            self.amount_active += traffic.order_total(message)
            self.paid_orders += 1
        for payment in payments or []:
            self.payments += 1
            if publish:
                self.messages.append(encode(payment))


def cancel_after_payment(plan: DemoPlan, message: dict[str, Any]) -> None:
    """A paid order the storefront cancels before shipment: refunded, stock released."""
    plan.cancelled_orders += 1
    plan.paid_orders -= 1
    plan.units_cancelled += sum(line["quantity"] for line in message["lines"])
    plan.amount_active -= traffic.order_total(message)


def amend_up_after_payment(plan: DemoPlan, line: dict[str, Any], more: int = 1) -> None:
    """A paid order amended to ``more`` extra units of ``line``: their price is owed, then paid
    by one more payment."""
    plan.amount_active += Decimal(str(line["unit_price"])) * more
    plan.payments += 1
    plan.units += more
    plan.units_by_sku[traffic.canonical(str(line["sku"]))] += more


DAY = timedelta(hours=8)  # the demo's day: the last eight hours
MARGIN = timedelta(minutes=10)  # the last orders are this long before now, at the latest


def plan_day(orders: int, *, seed: int = 2026, now: datetime | None = None) -> DemoPlan:
    rng = random.Random(seed)
    plan = DemoPlan(start=(now or datetime.now(UTC)) - DAY)
    # 20 s apart, closer when there are more orders than the day holds that way: an order
    # submitted after now is refused (in_future) and the demo would wait for it in vain
    step = min(20.0, (DAY - MARGIN).total_seconds() / max(orders, 1))
    submissions = []
    for number in range(1, orders + 1):
        channel = traffic.CHANNELS[number % len(traffic.CHANNELS)]
        at = plan.start + timedelta(seconds=number * step)
        message = traffic.submission(channel, number, rng=rng, submitted_at=at)
        submissions.append(message)
        plan.standard.append(message)
        plan.add_order(message, payments=[traffic.payment(message, captured_at=at)])
    # storefronts resend: the same message again has no second effect
    for message in submissions[: max(1, orders // 50)]:
        plan.messages.append(encode(message))
        plan.duplicates += 1
    # the same channel order id with different content is refused as a conflicting duplicate
    plan.messages.append(encode({**submissions[0], "shipping_fee": "99.00"}))
    plan.bad_kinds.append("conflicting duplicate")
    for kind, bad in traffic.bad_messages(plan.start):
        value = bad if isinstance(bad, bytes) else json.dumps(bad, ensure_ascii=False).encode()
        plan.messages.append((b"bad:" + kind.encode(), value))
        plan.bad_kinds.append(kind)
    return plan
