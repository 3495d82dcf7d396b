"""Billing's reads for people: invoices, receivables with aging, payments, credit notes, refunds,
the invoice export and the summary ``oms demo`` compares. Amounts are decimal strings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import account_store
from services.billing.domain import statement
from services.billing.store import (
    billing_orders,
    credit_notes,
    document_lines,
    invoice_lines,
    invoices,
    payments,
    recognitions,
    refunds,
)

AGING_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("current", 0), ("1-30", 30), ("31-60", 60), ("61-90", 90), ("90+", None))
"""Days past the due date (as of a day) -> bucket: not yet due or due today is ``current``."""


def aging_bucket(days_past_due: int) -> str:
    for name, upto in AGING_BUCKETS:
        if upto is None or days_past_due <= upto:
            return name
    raise AssertionError("unreachable")


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def invoice_view(row: Any) -> dict[str, Any]:
    return {
        "invoice_id": row.invoice_id, "order_id": row.order_id,
        "voucher_number": row.voucher_number, "kind": row.kind, "currency": row.currency,
        "net_total": str(row.net_total), "tax_total": str(row.tax_total), "total": str(row.total),
        "paid_total": str(row.paid), "credited": str(row.credited),
        "outstanding": str(row.outstanding), "status": row.status,
        "settled": row.status == "paid", "void_reason": row.void_reason,
        "issued_at": row.issued_at.isoformat(), "due_date": row.due_date.isoformat(),
    }


async def _with_lines(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    ids = [row.invoice_id for row in rows]
    lines: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for line in await conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_id.in_(ids))
                                   .order_by(invoice_lines.c.invoice_id, invoice_lines.c.line_no)):
        lines[line.invoice_id].append({
            "line_no": line.line_no, "kind": line.kind, "description": line.description,
            "sku": line.sku, "quantity": line.quantity, "gross": str(line.gross),
            "net": str(line.net), "tax_rate": str(line.tax_rate), "tax": str(line.tax)})
    return [invoice_view(row) | {"lines": lines[row.invoice_id]} for row in rows]


async def find_invoices(conn: AsyncConnection, order_id: str | None, limit: int
                        ) -> list[dict[str, Any]]:
    """Invoices, newest voucher first (voided ones too, with status ``voided``)."""
    stmt = select(invoices).order_by(invoices.c.year.desc(), invoices.c.number.desc()).limit(limit)
    if order_id is not None:
        stmt = stmt.where(invoices.c.order_id == order_id)
    return await _with_lines(conn, list(await conn.execute(stmt)))


async def invoice_detail(conn: AsyncConnection, voucher: str) -> dict[str, Any] | None:
    """One invoice with its lines, the payments allocated to it and the credit notes on it."""
    rows = list(await conn.execute(select(invoices).where(invoices.c.voucher_number == voucher)))
    if not rows:
        return None
    [found] = await _with_lines(conn, rows)
    account = await account_store.load_account(conn, found["order_id"])
    assert account is not None
    standing = statement(account).standing(found["invoice_id"])
    methods = {p.payment_id: p.method for p in account.payments}
    found["payments"] = [
        {"payment_id": pid, "method": methods.get(pid), "amount": str(amount)}
        for pid, amount in (standing.allocations if standing else ())]
    found["credit_notes"] = [
        {"voucher_number": n.voucher_number, "reason": n.reason, "total": str(n.total)}
        for n in account.credit_notes if n.invoice_voucher_number == voucher]
    return found


async def receivables(conn: AsyncConnection, as_of: date) -> dict[str, Any]:
    """Open invoices (something outstanding) by days past due on ``as_of``, with bucket totals."""
    rows = list(await conn.execute(
        select(invoices, billing_orders.c.customer_id)
        .join(billing_orders, billing_orders.c.order_id == invoices.c.order_id)
        .where(invoices.c.status == "open", invoices.c.outstanding > 0)
        .order_by(invoices.c.due_date, invoices.c.year, invoices.c.number)))
    names = [name for name, _ in AGING_BUCKETS]
    counts = dict.fromkeys(names, 0)
    totals: dict[str, dict[str, Decimal]] = {}
    items = []
    for row in rows:
        days = (as_of - row.due_date).days
        bucket = aging_bucket(days)
        counts[bucket] += 1
        per_currency = totals.setdefault(row.currency, dict.fromkeys([*names, "total"],
                                                                     Decimal("0.00")))
        per_currency[bucket] += row.outstanding
        per_currency["total"] += row.outstanding
        items.append(invoice_view(row) | {"customer_id": row.customer_id,
                                          "days_past_due": max(days, 0), "bucket": bucket})
    return {"as_of": as_of.isoformat(), "buckets": names, "counts": counts,
            "totals": {cur: {k: str(v) for k, v in t.items()} for cur, t in totals.items()},
            "invoices": items}


def payment_view(row: Any) -> dict[str, Any]:
    return {"payment_id": row.payment_id, "order_id": row.order_id, "method": row.method,
            "ledger_category": row.ledger_category, "kind": row.kind, "amount": str(row.amount),
            "currency": row.currency, "received_at": row.received_at.isoformat(),
            "recorded_at": row.recorded_at.isoformat(), "source": row.source,
            "recorded_by": row.recorded_by}


async def find_payments(conn: AsyncConnection, order_id: str | None, method: str | None,
                        limit: int) -> list[dict[str, Any]]:
    stmt = select(payments).order_by(payments.c.recorded_at.desc(), payments.c.payment_id)
    if order_id is not None:
        stmt = stmt.where(payments.c.order_id == order_id)
    if method is not None:
        stmt = stmt.where(payments.c.method == method)
    return [payment_view(r) for r in await conn.execute(stmt.limit(limit))]


async def find_credit_notes(conn: AsyncConnection, order_id: str | None, limit: int
                            ) -> list[dict[str, Any]]:
    stmt = select(credit_notes).order_by(credit_notes.c.year.desc(), credit_notes.c.number.desc())
    if order_id is not None:
        stmt = stmt.where(credit_notes.c.order_id == order_id)
    rows = list(await conn.execute(stmt.limit(limit)))
    lines: dict[str, list[dict[str, Any]]] = {r.credit_note_id: [] for r in rows}
    for line in await conn.execute(select(document_lines).where(
            document_lines.c.document.in_(list(lines))).order_by(document_lines.c.n)):
        lines[line.document].append({
            "line_no": line.line_no, "sku": line.sku, "quantity": line.quantity,
            "gross": str(line.gross), "net": str(line.net), "tax": str(line.gross - line.net)})
    return [{"credit_note_id": r.credit_note_id, "order_id": r.order_id,
             "voucher_number": r.voucher_number, "invoice_voucher_number": r.invoice_voucher_number,
             "reason": r.reason, "request_id": r.request_id, "currency": r.currency,
             "net": str(r.net), "tax": str(r.total - r.net), "total": str(r.total),
             "revenue_reversed": str(r.revenue_reversed), "issued_at": r.issued_at.isoformat(),
             "lines": lines[r.credit_note_id]} for r in rows]


async def find_refunds(conn: AsyncConnection, order_id: str | None, limit: int
                       ) -> list[dict[str, Any]]:
    stmt = select(refunds).order_by(refunds.c.issued_at.desc(), refunds.c.refund_id)
    if order_id is not None:
        stmt = stmt.where(refunds.c.order_id == order_id)
    return [{"refund_id": r.refund_id, "order_id": r.order_id, "payment_id": r.payment_id,
             "credit_note_voucher_number": r.credit_note_voucher_number, "method": r.method,
             "amount": str(r.amount), "currency": r.currency, "issued_at": r.issued_at.isoformat()}
            for r in await conn.execute(stmt.limit(limit))]


EXPORT_COLUMNS = ("voucher", "order_id", "issued_at", "currency", "net", "tax", "total", "paid",
                  "status")


async def export_rows(conn: AsyncConnection, start: date, end: date) -> list[tuple[str, ...]]:
    """Invoices issued from ``start`` to ``end`` (both days included, UTC), in voucher order."""
    low = _utc_day(start)
    high = _utc_day(end + timedelta(days=1))
    stmt = (select(invoices).where(invoices.c.issued_at >= low, invoices.c.issued_at < high)
            .order_by(invoices.c.series, invoices.c.year, invoices.c.number))
    return [(r.voucher_number, r.order_id, r.issued_at.isoformat(), r.currency, str(r.net_total),
             str(r.tax_total), str(r.total), str(r.paid), r.status)
            for r in await conn.execute(stmt)]


def _utc_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# ---- summary ------------------------------------------------------------------------------------

SUMMARY_KEYS: dict[str, str] = {
    "invoices": "live invoices (not voided)",
    "invoiced_total": "total of live invoices",
    "payments": "payments recorded",
    "paid_total": "sum of payments recorded (refunds not deducted)",
    "settled_invoices": "live invoices fully paid",
    "customer_credit": "paid beyond what is due, kept for the customers",
    "voided_invoices": "invoices voided (cancellation or amendment)",
    "credit_notes": "credit notes issued",
    "credited_total": "total of credit notes",
    "refunds": "refunds issued",
    "refunded_total": "total refunded",
    "net_paid_total": "paid_total - refunded_total",
    "owed_total": "invoiced_total - credited_total: what customers are liable for",
    "outstanding_total": "still to be paid on live invoices",
    "orders_invoiced": "orders with at least one live invoice",
    "orders_settled": "orders whose live invoices are all paid",
    "revenue_recognized": "net revenue recognised at shipment",
    "revenue_reversed": "net revenue reversed by credit notes",
    "by_method": "per payment method: payments and amount",
}
"""What each key of GET /summary means (every amount over all currencies; see by_currency)."""


def _per_currency(stmt: Select[Any]) -> Select[Any]:
    return stmt.group_by(stmt.selected_columns[0])


async def _currency_figures(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    live = ~invoices.c.voided
    # Settled: not cancelled, a paid live invoice and no open one.
    unsettled = (select(invoices.c.order_id).where(live, invoices.c.status == "open")
                 .union(select(billing_orders.c.order_id).where(billing_orders.c.cancelled)))
    queries = [
        (("invoices", "invoiced_total", "settled_invoices", "voided_invoices",
          "outstanding_total", "orders_invoiced", "orders_settled"),
         select(invoices.c.currency, func.count().filter(live),
                func.coalesce(func.sum(invoices.c.total).filter(live), 0),
                func.count().filter(and_(live, invoices.c.status == "paid")),
                func.count().filter(invoices.c.voided),
                func.coalesce(func.sum(invoices.c.outstanding).filter(live), 0),
                func.count(func.distinct(invoices.c.order_id)).filter(live),
                func.count(func.distinct(invoices.c.order_id)).filter(
                    and_(live, invoices.c.status == "paid",
                         invoices.c.order_id.not_in(unsettled))))),
        (("payments", "paid_total"),
         select(payments.c.currency, func.count(), func.sum(payments.c.amount))),
        (("customer_credit",),
         select(billing_orders.c.currency, func.sum(billing_orders.c.customer_credit))
         .where(billing_orders.c.currency.is_not(None))),
        (("credit_notes", "credited_total", "revenue_reversed"),
         select(credit_notes.c.currency, func.count(), func.sum(credit_notes.c.total),
                func.sum(credit_notes.c.revenue_reversed))),
        (("refunds", "refunded_total"),
         select(refunds.c.currency, func.count(), func.sum(refunds.c.amount))),
        (("revenue_recognized",), select(recognitions.c.currency, func.sum(recognitions.c.net))),
    ]
    figures: dict[str, dict[str, Any]] = {}
    for keys, stmt in queries:
        for row in await conn.execute(_per_currency(stmt)):
            figures.setdefault(row[0], {}).update(dict(zip(keys, row[1:], strict=True)))
    return figures


def _blank() -> dict[str, Any]:
    zero = Decimal("0.00")
    return {"invoices": 0, "invoiced_total": zero, "payments": 0, "paid_total": zero,
            "settled_invoices": 0, "customer_credit": zero, "voided_invoices": 0,
            "credit_notes": 0, "credited_total": zero, "refunds": 0, "refunded_total": zero,
            "net_paid_total": zero, "owed_total": zero, "outstanding_total": zero,
            "orders_invoiced": 0, "orders_settled": 0, "revenue_recognized": zero,
            "revenue_reversed": zero}


def _wire(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    """Counts and amounts for ``oms demo``, over every currency and per currency.

    The meaning of every key is in ``SUMMARY_KEYS`` (also served as ``keys``)."""
    by_currency: dict[str, dict[str, Any]] = {}
    for cur, found in sorted((await _currency_figures(conn)).items()):
        entry = _blank() | {k: v if v is not None else 0 for k, v in found.items()}
        entry["net_paid_total"] = Decimal(entry["paid_total"]) - Decimal(entry["refunded_total"])
        entry["owed_total"] = Decimal(entry["invoiced_total"]) - Decimal(entry["credited_total"])
        by_currency[cur] = entry
    overall = _blank()
    for entry in by_currency.values():
        for key, value in entry.items():
            overall[key] = overall[key] + value
    by_method: dict[str, dict[str, Any]] = {}
    for method, count, amount in await conn.execute(
            select(payments.c.method, func.count(), func.sum(payments.c.amount))
            .group_by(payments.c.method).order_by(payments.c.method)):
        by_method[method] = {"payments": count, "amount": str(amount)}
    return _wire(overall) | {"by_method": by_method,
                             "by_currency": {c: _wire(e) for c, e in by_currency.items()},
                             "keys": SUMMARY_KEYS}
