"""Whole order lifecycles as the services publish them, built from the contract models.

Each flow is the events of one order in flow order; order events carry their stream version
(amendments are ordered by it). Amounts follow samples.TOTAL (395.00: 2 x 199.00 + a gift mug,
15.00 off, 12.00 shipping).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from shared.contract.envelope import EventEnvelope
from shared.contract.fulfilment_events import (
    CreditNoteIssued,
    InvoiceVoided,
    RefundIssued,
    RevenueRecognized,
    StockDeducted,
    StockReleased,
)
from shared.contract.order_events import (
    OrderAmended,
    OrderCancelled,
    OrderDelivered,
    OrderDepositPaid,
    OrderReturned,
    OrderReturnRequested,
    OrderShipped,
    ShippedLine,
)
from shared.contract.payloads import (
    NotificationFailed,
    OrderPlaced,
    Payload,
    ReservedLine,
    SkuQuantity,
    StockReserved,
)
from tests.unit.reconcile.samples import (
    TOTAL,
    confirmation_sent,
    envelope,
    invoice_issued,
    order_confirmed,
    order_paid,
    order_placed,
    payment_recorded,
    stock_reserved,
)

AT = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
ALL_LINES = (("X-100", 2), ("GIFT-MUG", 1))
DEPOSIT = Decimal("100.00")
AMENDED_TOTAL = Decimal("594.00")  # X-100 x3: 597.00 - 15.00 + 12.00


def held(order_id: str, lines=ALL_LINES) -> list[ReservedLine]:
    return [ReservedLine(sku=sku, warehouse="HZ-1", quantity=q) for sku, q in lines]


def presale_placed(order_id: str) -> OrderPlaced:
    return order_placed(order_id).model_copy(update={
        "order_type": "presale",
        "payment": {"method": "alipay", "terms": "deposit", "deposit_amount": str(DEPOSIT)}})


def deposit_paid(order_id: str) -> OrderDepositPaid:
    return OrderDepositPaid(order_id=order_id, deposit_amount=DEPOSIT, paid_amount=DEPOSIT,
                            currency="CNY")


def amended(order_id: str, x100: int = 3, total: Decimal = AMENDED_TOTAL,
            request_id: str = "A-1") -> OrderAmended:
    lines = [{"line_no": 1, "sku": "X-100", "name": "Kettle", "quantity": x100, "unit_price": "199.00"},
             {"line_no": 2, "sku": "GIFT-MUG", "name": "Mug", "quantity": 1, "unit_price": "0.00",
              "gift_bundle": "B1"}]
    return OrderAmended(order_id=order_id, request_id=request_id,
                        before={"lines": [], "total": str(TOTAL)},
                        after={"lines": lines, "total": str(total)},
                        lines_delta=[SkuQuantity(sku="X-100", quantity=x100 - 2)],
                        total_before=TOTAL, total_after=total, currency="CNY")


def shipped(order_id: str, shipment_id: str = "S-1", lines=ALL_LINES) -> OrderShipped:
    return OrderShipped(order_id=order_id, shipment_id=shipment_id, warehouse="HZ-1", carrier="SF",
                        tracking_number=f"SF{shipment_id}",
                        lines=[ShippedLine(line_no=n, sku=sku, quantity=q)
                               for n, (sku, q) in enumerate(lines, start=1)],
                        complete=True, shipped_at=AT)


def deducted(order_id: str, shipment_id: str = "S-1", lines=ALL_LINES) -> StockDeducted:
    return StockDeducted(order_id=order_id, shipment_id=shipment_id, lines=held(order_id, lines))


def recognized(order_id: str, shipment_id: str = "S-1", net: Decimal = Decimal("349.56")
               ) -> RevenueRecognized:
    return RevenueRecognized(order_id=order_id, shipment_id=shipment_id, currency="CNY", net=net,
                             tax=TOTAL - net, gross=TOTAL)


def released(order_id: str, lines=ALL_LINES, reason: str = "cancelled") -> StockReleased:
    return StockReleased(order_id=order_id, lines=held(order_id, lines), reason=reason)


def voided(order_id: str, invoice_id: str | None = None, total: Decimal = TOTAL) -> InvoiceVoided:
    return InvoiceVoided(order_id=order_id, invoice_id=invoice_id or f"I-{order_id}",
                         voucher_number="INV-2026-000001", reason="cancelled", total=total,
                         currency="CNY")


def credit_note(order_id: str, reason: str, total: Decimal = TOTAL, note_id: str = "CN-1"
                ) -> CreditNoteIssued:
    return CreditNoteIssued(order_id=order_id, credit_note_id=note_id,
                            voucher_number=f"CN-2026-{note_id}", reason=reason, currency="CNY",
                            net=total, tax=Decimal("0.00"), total=total)


def refund(order_id: str, amount: Decimal = TOTAL, refund_id: str = "R-1",
           note_id: str | None = "CN-1") -> RefundIssued:
    return RefundIssued(order_id=order_id, refund_id=refund_id, method="alipay", amount=amount,
                        currency="CNY", issued_at=AT,
                        credit_note_voucher_number=f"CN-2026-{note_id}" if note_id else None)


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, reason="customer changed mind", stage="confirmed",
                          cancelled_by="C-1001")


def return_requested(order_id: str, request_id: str = "RT-1") -> OrderReturnRequested:
    return OrderReturnRequested(order_id=order_id, request_id=request_id, reason="broken",
                                lines=[SkuQuantity(sku="X-100", quantity=1)])


def returned(order_id: str, request_id: str = "RT-1") -> OrderReturned:
    return OrderReturned(order_id=order_id, request_id=request_id, warehouse="HZ-1", received_at=AT,
                         lines=[SkuQuantity(sku="X-100", quantity=1)])


def notification_failed(order_id: str) -> NotificationFailed:
    return NotificationFailed(order_id=order_id, notification_id=f"NF-{order_id}",
                              source_event_id="e", source_event_type="order.confirmed",
                              recipient="customer:C-1001", channel="email",
                              reason="smtp: connection refused")


def in_order(order_id: str, payloads: list[Payload]) -> list[EventEnvelope]:
    """Envelopes as the relays publish them: order events numbered in their stream."""
    version, out = 0, []
    for payload in payloads:
        if payload.event_type.startswith("order."):
            version += 1
            out.append(envelope(payload, version=version))
        else:
            out.append(envelope(payload))
    return out


# ---- the lifecycles ----------------------------------------------------------------------------


def paid_payloads(order_id: str) -> list[Payload]:
    return [order_placed(order_id), stock_reserved(order_id), order_confirmed(order_id),
            confirmation_sent(order_id), invoice_issued(order_id), payment_recorded(order_id),
            order_paid(order_id)]


def shipped_payloads(order_id: str) -> list[Payload]:
    return [*paid_payloads(order_id), shipped(order_id), deducted(order_id), recognized(order_id),
            OrderDelivered(order_id=order_id, delivered_at=AT)]


def returned_payloads(order_id: str) -> list[Payload]:
    kettle = Decimal("199.00")
    return [*shipped_payloads(order_id), return_requested(order_id), returned(order_id),
            credit_note(order_id, "returned", kettle), refund(order_id, kettle)]


def presale_payloads(order_id: str) -> list[Payload]:
    balance = TOTAL - DEPOSIT
    return [presale_placed(order_id), order_confirmed(order_id), confirmation_sent(order_id),
            invoice_issued(order_id, total=DEPOSIT, invoice_id="I-DEP"),
            invoice_issued(order_id, total=balance, invoice_id="I-BAL"),
            payment_recorded(order_id, amount=DEPOSIT, payment_id="P-DEP"), deposit_paid(order_id),
            stock_reserved(order_id), payment_recorded(order_id, amount=balance, payment_id="P-BAL"),
            order_paid(order_id)]


def amended_payloads(order_id: str) -> list[Payload]:
    """Amended after invoicing: more kettles, the invoice voided and a new one issued, then paid."""
    return [order_placed(order_id), stock_reserved(order_id), order_confirmed(order_id),
            confirmation_sent(order_id), invoice_issued(order_id, invoice_id="I-1"),
            amended(order_id),
            StockReserved(order_id=order_id, lines=held(order_id, (("X-100", 1),))),
            voided(order_id, "I-1"), invoice_issued(order_id, AMENDED_TOTAL, invoice_id="I-2"),
            payment_recorded(order_id, amount=AMENDED_TOTAL), order_paid(order_id, AMENDED_TOTAL)]


def amended_after_paid_payloads(order_id: str) -> list[Payload]:
    """Paid, then amended up before shipment: the payment reopens (the raised total is owed), the
    invoice is voided and reissued with the first payment carried over, the balance is paid and
    the order is paid again (a second order.paid)."""
    return [*paid_payloads(order_id), amended(order_id),
            StockReserved(order_id=order_id, lines=held(order_id, (("X-100", 1),))),
            voided(order_id), invoice_issued(order_id, AMENDED_TOTAL, TOTAL, invoice_id="I-2"),
            payment_recorded(order_id, amount=AMENDED_TOTAL - TOTAL, payment_id="P-2"),
            order_paid(order_id, AMENDED_TOTAL)]


def cancelled_unpaid_payloads(order_id: str) -> list[Payload]:
    return [order_placed(order_id), stock_reserved(order_id), order_confirmed(order_id),
            confirmation_sent(order_id), invoice_issued(order_id), cancelled(order_id),
            released(order_id), voided(order_id)]


def cancelled_paid_payloads(order_id: str) -> list[Payload]:
    return [*paid_payloads(order_id), cancelled(order_id), released(order_id),
            credit_note(order_id, "cancelled"), refund(order_id)]


LIFECYCLES = {
    "paid": paid_payloads,
    "shipped": shipped_payloads,
    "returned": returned_payloads,
    "presale": presale_payloads,
    "amended": amended_payloads,
    "amended_after_paid": amended_after_paid_payloads,
    "cancelled_unpaid": cancelled_unpaid_payloads,
    "cancelled_paid": cancelled_paid_payloads,
}


def lifecycle(name: str, order_id: str) -> list[EventEnvelope]:
    return in_order(order_id, LIFECYCLES[name](order_id))
