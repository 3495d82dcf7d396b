"""What goods are worth once discounts are shared out, revenue per shipment, value of returns.

Rounding: discounts (gross and net separately) are shared out over the goods lines in
proportion to each line's gross (``apportion``). A line's value for n of its q units is taken
cumulatively: after n units, value x n / q rounded half-up; each shipment (or return) books the
difference to what was booked before. So the shipment that completes a line takes the remainder,
and the revenue over all shipments equals the invoice's net and tax exactly. The shipping fee
is recognised in full with the first shipment; returns never credit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from services.billing.domain.account import SHIPPING_LINE, SHIPPING_SKU, Account, LineAmount
from services.billing.domain.invoicing import BillingRefusal, apportion, draft_invoice, money
from shared.contract.order_events import OrderReturned, OrderShipped
from shared.contract.payloads import InvoiceLine, OrderLine


def effective_lines(lines: Sequence[InvoiceLine], order_lines: Sequence[OrderLine], currency: str
                    ) -> list[LineAmount]:
    """An invoice's goods lines with its discount lines shared into them, then its shipping."""
    goods = [line for line in lines if line.kind == "goods"]
    if len(goods) != len(order_lines):
        raise BillingRefusal(f"{len(goods)} goods lines on the invoice, {len(order_lines)} "
                             "on the order")
    discounts = [line for line in lines if line.kind == "discount"]
    weights = [line.gross for line in goods]
    gross_off = apportion(sum((d.gross for d in discounts), Decimal(0)), weights, currency)
    net_off = apportion(sum((d.net for d in discounts), Decimal(0)), weights, currency)
    result = [
        LineAmount(order_line.line_no, order_line.sku, line.quantity, line.gross + g, line.net + n)
        for line, order_line, g, n in zip(goods, order_lines, gross_off, net_off, strict=True)
    ]
    fee = [line for line in lines if line.kind == "shipping"]
    if fee:
        result.append(LineAmount(SHIPPING_LINE, SHIPPING_SKU, 1,
                                 sum((f.gross for f in fee), Decimal(0)),
                                 sum((f.net for f in fee), Decimal(0))))
    return result


def order_values(account: Account) -> dict[int, LineAmount]:
    """Each order line's value (and the shipping fee's, as line 0) on the order's invoicing."""
    order = account.order
    if order is None:
        raise BillingRefusal(f"order {account.order_id}: billing has not seen it placed")
    values = effective_lines(draft_invoice(order).lines, order.lines, order.currency)
    return {value.line_no: value for value in values}


def _part(value: LineAmount, before: int, after: int, currency: str) -> LineAmount:
    def cumulative(amount: Decimal, units: int) -> Decimal:
        return money(amount * units / value.quantity, currency)

    return LineAmount(
        value.line_no, value.sku, after - before,
        cumulative(value.gross, after) - cumulative(value.gross, before),
        cumulative(value.net, after) - cumulative(value.net, before),
    )


def shipped_units(account: Account) -> dict[int, int]:
    units: dict[int, int] = {}
    for recognition in account.recognitions:
        for line in recognition.lines:
            units[line.line_no] = units.get(line.line_no, 0) + line.quantity
    return units


def returned_units(account: Account) -> dict[int, int]:
    units: dict[int, int] = {}
    for note in account.credit_notes:
        if note.reason == "returned":
            for line in note.lines:
                units[line.line_no] = units.get(line.line_no, 0) + line.quantity
    return units


def recognize(account: Account, shipped: OrderShipped) -> tuple[LineAmount, ...]:
    """The revenue of one shipment, line by line (plus the shipping fee on the first)."""
    values = order_values(account)
    currency = account.order.currency if account.order else ""
    done = shipped_units(account)
    parts: list[LineAmount] = []
    for line in shipped.lines:
        value = values.get(line.line_no)
        if value is None or value.line_no == SHIPPING_LINE or value.sku != line.sku:
            matches = [v for n, v in values.items() if n != SHIPPING_LINE and v.sku == line.sku]
            if not matches:
                raise BillingRefusal(f"shipment {shipped.shipment_id}: line {line.line_no} "
                                     f"({line.sku}) is not on order {account.order_id}")
            value = matches[0]
        before = done.get(value.line_no, 0)
        if line.quantity <= 0 or before + line.quantity > value.quantity:
            raise BillingRefusal(f"shipment {shipped.shipment_id}: {line.quantity} of "
                                 f"{value.sku} would exceed the {value.quantity - before} "
                                 "left to ship")
        done[value.line_no] = before + line.quantity
        parts.append(_part(value, before, before + line.quantity, currency))
    fee = values.get(SHIPPING_LINE)
    if fee is not None and not account.recognitions:
        parts.append(fee)
    return tuple(parts)


def returned_value(account: Account, returned: OrderReturned) -> tuple[LineAmount, ...]:
    """What the returned units are worth, line by line: as recognised for those units.

    A SKU on several lines is taken from the first line that still has shipped, unreturned
    units of it.
    """
    values = order_values(account)
    currency = account.order.currency if account.order else ""
    shipped = shipped_units(account)
    back = returned_units(account)
    parts: list[LineAmount] = []
    for line in returned.lines:
        wanted = line.quantity
        if wanted <= 0:
            raise BillingRefusal(f"return {returned.request_id}: {line.sku} quantity {wanted}")
        for value in values.values():
            if value.line_no == SHIPPING_LINE or value.sku != line.sku or not wanted:
                continue
            before = back.get(value.line_no, 0)
            take = min(wanted, shipped.get(value.line_no, 0) - before)
            if take <= 0:
                continue
            back[value.line_no] = before + take
            wanted -= take
            parts.append(_part(value, before, before + take, currency))
        if wanted:
            raise BillingRefusal(f"return {returned.request_id}: {line.quantity} of {line.sku} "
                                 f"returned, {line.quantity - wanted} shipped and not yet returned")
    return tuple(parts)
