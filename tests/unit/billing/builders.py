"""Building blocks for billing's unit tests: orders, order facts, a voucher book, a cause."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

from services.billing import domain
from shared.contract.order_events import OrderAmended, OrderReturned, OrderShipped, ShippedLine
from shared.contract.payloads import OrderLine, OrderPlaced, SkuQuantity

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
ORDER_ID = "O-0000000000000001"


def order(lines, discounts=(), shipping="0.00", currency="CNY", total=None, *,
          order_type="standard", payment: dict[str, Any] | None = None) -> OrderPlaced:
    """An order.placed from (sku, quantity, unit_price, tax_rate) lines and discount amounts."""
    order_lines = [OrderLine(line_no=n, sku=sku, name=f"item {sku}", quantity=q,
                             unit_price=D(price), tax_rate=D(rate))
                   for n, (sku, q, price, rate) in enumerate(lines, start=1)]
    subtotal = sum((line.quantity * line.unit_price for line in order_lines), D(0))
    discount_total = sum((D(a) for a in discounts), D(0))
    return OrderPlaced(
        order_id=ORDER_ID, channel="tmall", channel_order_id="TM-1",
        order_type=order_type, submitted_at=NOW, customer={"id": "C-1"}, shipping_address={},
        lines=order_lines,
        discounts=[{"kind": "coupon", "code": f"C{n}", "amount": a}
                   for n, a in enumerate(discounts, start=1)],
        shipping_fee=D(shipping), currency=currency, subtotal=subtotal,
        discount_total=discount_total,
        total=D(total) if total is not None else subtotal - discount_total + D(shipping),
        payment=payment or {"method": "alipay", "terms": "prepaid"}, content_hash="h",
    )


def sample_order(**kwargs: Any) -> OrderPlaced:
    """The CONTRACT.md sample: 2 x X-100 at 199.00, a free mug, coupons 10 + 5, shipping 12."""
    return order([("X-100", 2, "199.00", "0.13"), ("GIFT-MUG", 1, "0.00", "0.13")],
                 discounts=["10.00", "5.00"], shipping="12.00", **kwargs)


def presale(deposit="100.00", **kwargs: Any) -> OrderPlaced:
    return order([("PRE-1", 2, "299.00", "0.13")], order_type="presale",
                 payment={"method": "alipay", "terms": "deposit", "deposit_amount": deposit},
                 **kwargs)


class VoucherBook:
    """Numbers per series from 1, as the database counters would give them."""

    def __init__(self, year: int = 2026) -> None:
        self.year = year
        self.last: dict[str, int] = {}

    def next(self, series: str) -> str:
        self.last[series] = self.last.get(series, 0) + 1
        return domain.voucher_number(self.year, self.last[series], series)


_causes = iter(range(1, 10**9))


def cause(at: datetime = NOW) -> domain.Cause:
    return domain.Cause(f"evt-{next(_causes)}", at)


def payment(payment_id: str, amount: str, method: str = "alipay", kind: str = "full",
            currency: str = "CNY") -> domain.Payment:
    return domain.Payment(payment_id, method, kind, D(amount), currency, NOW)


def shipped(shipment_id: str, *lines: tuple[int, str, int]) -> OrderShipped:
    return OrderShipped(order_id=ORDER_ID, shipment_id=shipment_id, warehouse="WH-1",
                        carrier="SF", tracking_number="T", complete=False, shipped_at=NOW,
                        lines=[ShippedLine(line_no=n, sku=s, quantity=q) for n, s, q in lines])


def returned(request_id: str, *lines: tuple[str, int]) -> OrderReturned:
    return OrderReturned(order_id=ORDER_ID, request_id=request_id, warehouse="WH-1",
                         received_at=NOW, lines=[SkuQuantity(sku=s, quantity=q) for s, q in lines])


def amended(request_id: str, before: OrderPlaced, after: OrderPlaced) -> OrderAmended:
    def snapshot(o: OrderPlaced) -> dict[str, Any]:
        return {"lines": [x.model_dump(mode="json") for x in o.lines], "shipping_address": {},
                "subtotal": str(o.subtotal), "total": str(o.total)}

    return OrderAmended(order_id=ORDER_ID, request_id=request_id, before=snapshot(before),
                        after=snapshot(after), total_before=before.total,
                        total_after=after.total, currency=before.currency)
