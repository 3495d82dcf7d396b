"""Generators of storefront messages in the CONTRACT.md shapes (valid ones and typical bad ones)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

CHANNELS: tuple[str, ...] = ("tmall", "jd", "pdd", "web", "pos")
# (catalog SKU, how storefronts spell it, unit price)
PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("X-100", "X-100", "199.00"),
    ("X-100", "x100", "199.00"),
    ("X-200", "X 200", "299.00"),
    ("TEA-500", "TEA-500", "88.00"),
    ("BOOK-01", "book-01", "45.50"),
    ("PHONE-CASE", "Phone-Case", "29.90"),
)
_SPELLINGS = {spelled: sku for sku, spelled, _ in PRODUCTS}


def canonical(sku: str) -> str:
    """The catalog SKU of a spelling the demo traffic uses."""
    return _SPELLINGS.get(sku, sku)


PAYMENT_METHODS: tuple[str, ...] = ("alipay", "wechat_pay", "card", "alipay", "wechat_pay")
NAMES: tuple[str, ...] = ("王芳", "李娜", "张伟", "刘洋", "陈静", "Anna Schmidt", "John Smith")


def submission(channel: str, number: int, *, rng: random.Random, submitted_at: datetime,
               lines: int | None = None) -> dict[str, Any]:
    """A valid prepaid standard order."""
    customer_no = rng.randint(1000, 1999)
    name = rng.choice(NAMES)
    phone = f"+86138{rng.randint(0, 99_999_999):08d}"
    chosen = rng.sample(PRODUCTS, k=lines or rng.randint(1, 3))
    order_lines: list[dict[str, Any]] = [
        {"sku": spelled, "quantity": rng.randint(1, 3), "unit_price": price}
        for _, spelled, price in chosen
    ]
    subtotal = sum((Decimal(x["unit_price"]) * x["quantity"] for x in order_lines), Decimal(0))
    discounts = []
    if rng.random() < 0.3 and subtotal > 50:
        discounts.append({"kind": "coupon", "code": "NEW10", "amount": "10.00"})
    return {
        "type": "order.submitted",
        "channel": channel,
        "channel_order_id": f"{channel.upper()}-{submitted_at:%Y%m%d}-{number:06d}",
        "submitted_at": submitted_at.isoformat(),
        "order_type": "standard",
        "customer": {"id": f"C-{customer_no}", "name": name, "phone": phone,
                     "email": f"c{customer_no}@example.com", "tier": "regular"},
        "shipping_address": {"recipient": name, "phone": phone, "country": "CN",
                             "province": "浙江省", "city": "杭州市", "district": "西湖区",
                             "line1": f"文三路 {rng.randint(1, 999)} 号", "postal_code": "310000"},
        "lines": order_lines,
        "discounts": discounts,
        "shipping_fee": "12.00" if subtotal < 200 else "0.00",
        "currency": "CNY",
        "payment": {"method": rng.choice(PAYMENT_METHODS), "terms": "prepaid"},
        "salesperson": f"S-{rng.randint(1, 12):02d}",
    }


def order_total(message: dict[str, Any]) -> Decimal:
    subtotal = sum((Decimal(x["unit_price"]) * x["quantity"] for x in message["lines"]), Decimal(0))
    discounts = sum((Decimal(d["amount"]) for d in message.get("discounts", [])), Decimal(0))
    return subtotal - discounts + Decimal(str(message.get("shipping_fee", "0")))


def payment(message: dict[str, Any], *, captured_at: datetime, amount: Decimal | None = None
            ) -> dict[str, Any]:
    return {
        "type": "payment.captured",
        "channel": message["channel"],
        "channel_order_id": message["channel_order_id"],
        "payment_id": f"PAY-{message['channel_order_id']}",
        "method": message["payment"]["method"],
        "amount": str(amount if amount is not None else order_total(message)),
        "kind": "full",
        "captured_at": (captured_at + timedelta(seconds=5)).isoformat(),
    }


def bad_messages(submitted_at: datetime) -> list[tuple[str, bytes | dict[str, Any]]]:
    """Typical bad input, each with the rule it breaks (the demo expects each to be refused)."""
    rng = random.Random(7)
    base = submission("web", 990_001, rng=rng, submitted_at=submitted_at)
    unknown_sku = {**base, "channel_order_id": "WEB-BAD-1",
                   "lines": [{"sku": "X-1OO", "quantity": 1, "unit_price": "199.00"}]}
    negative = {**base, "channel_order_id": "WEB-BAD-2",
                "lines": [{"sku": "X-100", "quantity": -2, "unit_price": "199.00"}]}
    no_customer = {k: v for k, v in base.items() if k != "customer"} | {"channel_order_id": "WEB-BAD-3"}
    bad_channel = {**base, "channel": "ebay", "channel_order_id": "WEB-BAD-4"}
    return [
        ("unknown SKU", unknown_sku),
        ("negative quantity", negative),
        ("missing customer", no_customer),
        ("unregistered channel", bad_channel),
        ("not JSON", b"{this is not json"),
        ("unknown type", {"type": "order.teleported", "channel": "web", "channel_order_id": "X"}),
    ]
