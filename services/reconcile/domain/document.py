"""The fact sheet as a JSON document (stored as JSONB) and as the summary people read."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
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
)
from services.reconcile.domain.rules import money

FLAGS: tuple[str, ...] = ("placed", "confirmed", "backordered", "deposit_paid", "paid_flag",
                          "delivered", "cancelled")


def _units(lines: Mapping[str, int]) -> dict[str, int]:
    return {sku: int(units) for sku, units in lines.items()}


def _notification(n: NotificationFact) -> dict[str, Any]:
    return {"source_event_type": n.source_event_type, "recipient": n.recipient, "failure": n.failure}


def to_document(facts: OrderFacts) -> dict[str, Any]:
    """Every fact, JSON-ready (amounts as decimal strings); ``from_document`` reads it back."""
    return {
        **{flag: getattr(facts, flag) for flag in FLAGS},
        "order_type": facts.order_type,
        "currency": facts.currency,
        "order_total": None if facts.order_total is None else str(facts.order_total),
        "ordered": _units(facts.ordered),
        "paid_version": facts.paid_version,
        "amendments": {k: {"version": a.version, "total": str(a.total),
                           "ordered": None if a.ordered is None else _units(a.ordered),
                           "raised": a.raised}
                       for k, a in facts.amendments.items()},
        "shipments": {k: _units(v) for k, v in facts.shipments.items()},
        "returns": {k: _units(v) for k, v in facts.returns.items()},
        "reservations": {k: _units(v) for k, v in facts.reservations.items()},
        "releases": {k: _units(v) for k, v in facts.releases.items()},
        "deductions": {k: {"shipment_id": d.shipment_id, "lines": _units(d.lines)}
                       for k, d in facts.deductions.items()},
        "invoices": {k: {"voucher_number": i.voucher_number, "total": str(i.total),
                         "currency": i.currency} for k, i in facts.invoices.items()},
        "voided": {k: str(v) for k, v in facts.voided.items()},
        "payments": {k: {"amount": str(p.amount), "currency": p.currency}
                     for k, p in facts.payments.items()},
        "revenue": {k: str(v) for k, v in facts.revenue.items()},
        "credit_notes": {k: {"voucher_number": c.voucher_number, "reason": c.reason,
                             "total": str(c.total), "revenue_reversed": str(c.revenue_reversed)}
                         for k, c in facts.credit_notes.items()},
        "refunds": {k: {"amount": str(r.amount),
                        "credit_note_voucher_number": r.credit_note_voucher_number}
                    for k, r in facts.refunds.items()},
        "notifications": {k: _notification(n) for k, n in facts.notifications.items()},
        "failed_notifications": {k: _notification(n) for k, n in facts.failed_notifications.items()},
    }


def _read_notification(n: Mapping[str, Any]) -> NotificationFact:
    return NotificationFact(n["source_event_type"], n["recipient"], n.get("failure"))


def from_document(order_id: str, doc: Mapping[str, Any]) -> OrderFacts:
    if not doc:
        return OrderFacts(order_id)
    total = doc.get("order_total")
    return OrderFacts(
        order_id=order_id,
        **{flag: bool(doc.get(flag, False)) for flag in FLAGS},
        order_type=doc.get("order_type"),
        currency=doc.get("currency"),
        order_total=None if total is None else Decimal(total),
        ordered=_units(doc.get("ordered", {})),
        paid_version=int(doc.get("paid_version", 0)),
        amendments={k: Amendment(int(a["version"]), Decimal(a["total"]),
                                 None if a.get("ordered") is None else _units(a["ordered"]),
                                 bool(a.get("raised", False)))
                    for k, a in doc.get("amendments", {}).items()},
        shipments={k: _units(v) for k, v in doc.get("shipments", {}).items()},
        returns={k: _units(v) for k, v in doc.get("returns", {}).items()},
        reservations={k: _units(v) for k, v in doc.get("reservations", {}).items()},
        releases={k: _units(v) for k, v in doc.get("releases", {}).items()},
        deductions={k: DeductionFact(d["shipment_id"], _units(d["lines"]))
                    for k, d in doc.get("deductions", {}).items()},
        invoices={k: InvoiceFact(i["voucher_number"], Decimal(i["total"]), i["currency"])
                  for k, i in doc.get("invoices", {}).items()},
        voided={k: Decimal(v) for k, v in doc.get("voided", {}).items()},
        payments={k: PaymentFact(Decimal(p["amount"]), p["currency"])
                  for k, p in doc.get("payments", {}).items()},
        revenue={k: Decimal(v) for k, v in doc.get("revenue", {}).items()},
        credit_notes={k: CreditNoteFact(c["voucher_number"], c["reason"], Decimal(c["total"]),
                                        Decimal(c.get("revenue_reversed", "0")))
                      for k, c in doc.get("credit_notes", {}).items()},
        refunds={k: RefundFact(Decimal(r["amount"]), r.get("credit_note_voucher_number"))
                 for k, r in doc.get("refunds", {}).items()},
        notifications={k: _read_notification(n) for k, n in doc.get("notifications", {}).items()},
        failed_notifications={k: _read_notification(n)
                              for k, n in doc.get("failed_notifications", {}).items()},
    )


def describe(facts: OrderFacts) -> dict[str, Any]:
    """The sheet for people: flags, quantities per SKU and amounts as decimal strings."""
    currency = facts.currency

    def amount(value: Decimal | None) -> str | None:
        return None if value is None else money(value, currency)

    return {
        **{flag: getattr(facts, flag) for flag in FLAGS},
        "order_type": facts.order_type,
        "currency": currency,
        "order_total": amount(facts.order_total),
        "amended": facts.amended,
        "current_total": amount(facts.current_total),
        "ordered": facts.current_ordered,
        "reserved": facts.reserved,
        "released": facts.released,
        "deducted": facts.deducted,
        "held": facts.held,
        "shipped": facts.shipped,
        "shipments": sorted(facts.shipments),
        "returns": sorted(facts.returns),
        "invoices_count": facts.invoices_count,
        "invoices": {k: {"voucher_number": i.voucher_number, "total": amount(i.total),
                         "currency": i.currency, "voided": k in facts.voided}
                     for k, i in sorted(facts.invoices.items())},
        "invoiced_total": amount(facts.invoiced_total),
        "credited_total": amount(facts.credited()),
        "credit_notes": {k: {"voucher_number": c.voucher_number, "reason": c.reason,
                             "total": amount(c.total)} for k, c in sorted(facts.credit_notes.items())},
        "paid_total": amount(facts.paid_total),
        "refunded_total": amount(facts.refunded_total),
        "payments": {k: {"amount": amount(p.amount), "currency": p.currency}
                     for k, p in sorted(facts.payments.items())},
        "revenue_recognised": {k: amount(v) for k, v in sorted(facts.revenue.items())},
        "recognised_net": amount(facts.recognised_net),
        "notifications_count": facts.notifications_count,
        "notifications_failed": len(facts.failed_notifications),
    }
