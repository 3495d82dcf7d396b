"""How each event adds its fact to an order's sheet (order-insensitive, idempotent by id)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from services.reconcile.domain.facts import (
    Amendment,
    CreditNoteFact,
    DeductionFact,
    InvoiceFact,
    NotificationFact,
    OrderFacts,
    PaymentFact,
    RefundFact,
    add_up,
)
from shared.contract.fulfilment_events import (
    CreditNoteIssued,
    InvoiceVoided,
    RefundIssued,
    RevenueRecognized,
    StockDeducted,
    StockReleased,
)
from shared.contract.order_events import OrderAmended, OrderReturned, OrderShipped
from shared.contract.payloads import (
    InvoiceIssued,
    NotificationFailed,
    NotificationSent,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    PaymentRecorded,
    StockReserved,
)

# Events that add a fact; everything else is ignored.
FACT_EVENT_TYPES: frozenset[str] = frozenset({
    "order.placed", "order.confirmed", "order.backordered", "order.amended", "order.deposit_paid",
    "order.paid", "order.shipped", "order.delivered", "order.cancelled", "order.returned",
    "stock.reserved", "stock.released", "stock.deducted",
    "invoice.issued", "invoice.voided", "payment.recorded", "revenue.recognized",
    "credit_note.issued", "refund.issued",
    "notification.sent", "notification.failed",
})


def _per_sku(lines: Iterable[Any]) -> dict[str, int]:
    return add_up({line.sku: line.quantity} for line in lines)



def apply_event(facts: OrderFacts, event_id: str, event_type: str, payload: Mapping[str, Any],
                stream_version: int = 0) -> OrderFacts:
    """The fact sheet after one more event; the same event twice changes nothing.

    ``stream_version`` is the order stream's version of an order event (orders amendments).
    """
    data = dict(payload)
    apply = _APPLY.get(event_type)
    return facts if apply is None else apply(facts, event_id, data, stream_version)


def _placed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    placed = OrderPlaced.model_validate(data)
    return replace(facts, placed=True, order_type=placed.order_type, currency=placed.currency,
                   order_total=placed.total, ordered=_per_sku(placed.lines))


def _confirmed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    confirmed = OrderConfirmed.model_validate(data)
    return replace(facts, confirmed=True, currency=facts.currency or confirmed.currency)


def _amended(facts: OrderFacts, _: str, data: dict[str, Any], version: int) -> OrderFacts:
    amended = OrderAmended.model_validate(data)
    raw_lines = amended.after.get("lines")
    ordered = (_per_sku(OrderLine.model_validate(x) for x in raw_lines)
               if isinstance(raw_lines, list) else None)
    fact = Amendment(version=version, total=amended.total_after, ordered=ordered,
                     raised=amended.raises_total)
    return replace(facts, amendments={**facts.amendments, amended.request_id: fact})


def _paid(facts: OrderFacts, _: str, data: dict[str, Any], version: int) -> OrderFacts:
    OrderPaid.model_validate(data)
    return replace(facts, paid_flag=True, paid_version=max(facts.paid_version, version))


def _shipped(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    shipped = OrderShipped.model_validate(data)
    return replace(facts, shipments={**facts.shipments, shipped.shipment_id: _per_sku(shipped.lines)})


def _returned(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    returned = OrderReturned.model_validate(data)
    return replace(facts, returns={**facts.returns, returned.request_id: _per_sku(returned.lines)})


def _reserved(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    lines = _per_sku(StockReserved.model_validate(data).lines)
    return replace(facts, reservations={**facts.reservations, event_id: lines})


def _released(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    lines = _per_sku(StockReleased.model_validate(data).lines)
    return replace(facts, releases={**facts.releases, event_id: lines})


def _deducted(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    deducted = StockDeducted.model_validate(data)
    fact = DeductionFact(deducted.shipment_id, _per_sku(deducted.lines))
    return replace(facts, deductions={**facts.deductions, event_id: fact})


def _invoiced(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    invoice = InvoiceIssued.model_validate(data)
    fact = InvoiceFact(invoice.voucher_number, invoice.total, invoice.currency)
    return replace(facts, invoices={**facts.invoices, invoice.invoice_id: fact})


def _voided(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    voided = InvoiceVoided.model_validate(data)
    return replace(facts, voided={**facts.voided, voided.invoice_id: voided.total})


def _payment(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    payment = PaymentRecorded.model_validate(data)
    fact = PaymentFact(payment.amount, payment.currency)
    return replace(facts, payments={**facts.payments, payment.payment_id: fact})


def _revenue(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    revenue = RevenueRecognized.model_validate(data)
    return replace(facts, revenue={**facts.revenue, revenue.shipment_id: revenue.net})


def _credit_note(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    note = CreditNoteIssued.model_validate(data)
    fact = CreditNoteFact(note.voucher_number, note.reason, note.total, note.revenue_reversed)
    return replace(facts, credit_notes={**facts.credit_notes, note.credit_note_id: fact})


def _refund(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    refund = RefundIssued.model_validate(data)
    fact = RefundFact(refund.amount, refund.credit_note_voucher_number)
    return replace(facts, refunds={**facts.refunds, refund.refund_id: fact})


def _notified(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    sent = NotificationSent.model_validate(data)
    note = NotificationFact(sent.source_event_type, sent.recipient)
    return replace(facts, notifications={**facts.notifications, sent.notification_id: note})


def _notification_failed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    failed = NotificationFailed.model_validate(data)
    note = NotificationFact(failed.source_event_type, failed.recipient, failed.reason)
    return replace(facts, failed_notifications={**facts.failed_notifications,
                                                failed.notification_id: note})


Apply = Callable[[OrderFacts, str, dict[str, Any], int], OrderFacts]


def _flag(name: str) -> Apply:
    def apply(facts: OrderFacts, _: str, __: dict[str, Any], ___: int) -> OrderFacts:
        changes: dict[str, Any] = {name: True}
        return replace(facts, **changes)

    return apply


_APPLY: dict[str, Apply] = {
    "order.placed": _placed,
    "order.confirmed": _confirmed,
    "order.backordered": _flag("backordered"),
    "order.amended": _amended,
    "order.deposit_paid": _flag("deposit_paid"),
    "order.paid": _paid,
    "order.shipped": _shipped,
    "order.delivered": _flag("delivered"),
    "order.cancelled": _flag("cancelled"),
    "order.returned": _returned,
    "stock.reserved": _reserved,
    "stock.released": _released,
    "stock.deducted": _deducted,
    "invoice.issued": _invoiced,
    "invoice.voided": _voided,
    "payment.recorded": _payment,
    "revenue.recognized": _revenue,
    "credit_note.issued": _credit_note,
    "refund.issued": _refund,
    "notification.sent": _notified,
    "notification.failed": _notification_failed,
}
assert set(_APPLY) == FACT_EVENT_TYPES
