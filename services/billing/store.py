"""Billing's own tables (order facts, voucher counters, invoices, payments) and their queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain import Invoiced, settlement
from shared.contract.payloads import InvoiceIssued, OrderPlaced, PaymentRecorded

metadata = MetaData()
Money = Numeric(asdecimal=True)  # unconstrained: amounts arrive quantised to their currency

billing_orders = Table(
    "billing_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    # The order.placed payload as received; NULL while only later events have arrived.
    Column("placed", JSONB),
    Column("placed_event_id", Uuid),
    Column("currency", Text),
    Column("total", Money),
    Column("customer_id", Text),
    Column("payment_method", Text),
    # An order.confirmed that arrived before order.placed: the invoice waits for the facts.
    Column("confirmed_event_id", Uuid),
)

voucher_counters = Table(
    "voucher_counters",
    metadata,
    Column("series", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("last_number", Integer, nullable=False),
    PrimaryKeyConstraint("series", "year"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", Text, primary_key=True),
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False, unique=True),
    Column("voucher_number", Text, nullable=False, unique=True),
    Column("series", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("currency", Text, nullable=False),
    Column("net_total", Money, nullable=False),
    Column("tax_total", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),  # the invoice.issued
    Column("cause_event_id", Uuid, nullable=False),  # the order event that led to it
    UniqueConstraint("series", "year", "number", name="invoices_voucher_once"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("invoice_id", Text, ForeignKey("invoices.invoice_id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("sku", Text),
    Column("quantity", Integer, nullable=False),
    Column("gross", Money, nullable=False),
    Column("net", Money, nullable=False),
    Column("tax_rate", Money, nullable=False),
    Column("tax", Money, nullable=False),
    PrimaryKeyConstraint("invoice_id", "line_no"),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", Text, primary_key=True),
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False),
    Column("method", Text, nullable=False),
    Column("ledger_category", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", Text, nullable=False),
    Column("captured_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("event_id", Uuid, nullable=False),  # the payment.recorded
    Column("cause_event_id", Uuid, nullable=False),  # the order.payment_captured
    Index("payments_by_order", "order_id"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


# ---- the per-order lock and its facts (inside the caller's transaction) --------------------


@dataclass(frozen=True, slots=True)
class OrderAccount:
    """Billing's row for one order, locked for the rest of the transaction."""

    order_id: str
    placed: OrderPlaced | None
    currency: str | None
    confirmed_event_id: uuid.UUID | None


async def lock_order(conn: AsyncConnection, order_id: str) -> OrderAccount:
    """The order's row, created when missing and locked, so one transaction at a time bills it."""
    await conn.execute(insert(billing_orders).values(order_id=order_id).on_conflict_do_nothing())
    row = (await conn.execute(
        select(billing_orders).where(billing_orders.c.order_id == order_id).with_for_update()
    )).one()
    placed = OrderPlaced.model_validate(row.placed) if row.placed is not None else None
    return OrderAccount(order_id, placed, row.currency, row.confirmed_event_id)


async def keep_order_facts(conn: AsyncConnection, order: OrderPlaced, event_id: uuid.UUID) -> None:
    await conn.execute(
        update(billing_orders).where(billing_orders.c.order_id == order.order_id).values(
            placed=order.wire(), placed_event_id=event_id, currency=order.currency,
            total=order.total, customer_id=order.customer.get("id"),
            payment_method=order.payment.get("method"),
        )
    )


async def remember_confirmation(conn: AsyncConnection, order_id: str, event_id: uuid.UUID) -> None:
    await conn.execute(update(billing_orders).where(billing_orders.c.order_id == order_id)
                       .values(confirmed_event_id=event_id))


async def next_voucher_number(conn: AsyncConnection, series: str, year: int) -> int:
    """The next number of a series in a year, gapless.

    The upsert takes the counter row's lock (as SELECT ... FOR UPDATE would) until the invoice's
    transaction ends: a concurrent invoice waits and then continues from the committed number;
    a rolled-back invoice takes its increment with it, so no number is skipped.
    """
    first = insert(voucher_counters).values(series=series, year=year, last_number=1)
    stmt = first.on_conflict_do_update(
        index_elements=[voucher_counters.c.series, voucher_counters.c.year],
        set_={"last_number": voucher_counters.c.last_number + 1},
    ).returning(voucher_counters.c.last_number)
    return int((await conn.execute(stmt)).scalar_one())


async def invoice_of(conn: AsyncConnection, order_id: str) -> Invoiced | None:
    row = (await conn.execute(
        select(invoices.c.voucher_number, invoices.c.total, invoices.c.currency)
        .where(invoices.c.order_id == order_id)
    )).first()
    return Invoiced(row.voucher_number, row.total, row.currency) if row else None


async def paid_total(conn: AsyncConnection, order_id: str) -> Decimal:
    stmt = select(func.coalesce(func.sum(payments.c.amount), 0)).where(
        payments.c.order_id == order_id)
    return Decimal((await conn.execute(stmt)).scalar_one())


async def payment_known(conn: AsyncConnection, payment_id: str) -> bool:
    stmt = select(payments.c.payment_id).where(payments.c.payment_id == payment_id)
    return (await conn.execute(stmt)).first() is not None


async def insert_invoice(conn: AsyncConnection, issued: InvoiceIssued, *, series: str, year: int,
                         number: int, event_id: uuid.UUID, cause_event_id: uuid.UUID) -> None:
    await conn.execute(insert(invoices).values(
        invoice_id=issued.invoice_id, order_id=issued.order_id,
        voucher_number=issued.voucher_number, series=series, year=year, number=number,
        currency=issued.currency, net_total=issued.net_total, tax_total=issued.tax_total,
        total=issued.total, issued_at=issued.issued_at, event_id=event_id,
        cause_event_id=cause_event_id,
    ))
    await conn.execute(insert(invoice_lines), [
        {"invoice_id": issued.invoice_id, "line_no": n} | line.model_dump()
        for n, line in enumerate(issued.lines, start=1)
    ])


async def insert_payment(conn: AsyncConnection, recorded: PaymentRecorded, *, kind: str,
                         captured_at: datetime, recorded_at: datetime, event_id: uuid.UUID,
                         cause_event_id: uuid.UUID) -> None:
    await conn.execute(insert(payments).values(
        payment_id=recorded.payment_id, order_id=recorded.order_id, method=recorded.method,
        ledger_category=recorded.ledger_category, kind=kind, amount=recorded.amount,
        currency=recorded.currency, captured_at=captured_at, recorded_at=recorded_at,
        event_id=event_id, cause_event_id=cause_event_id,
    ))


# ---- reads -------------------------------------------------------------------------------

# What has been paid towards an invoice's order (the index on payments.order_id serves it).
_paid = (select(func.coalesce(func.sum(payments.c.amount), 0))
         .where(payments.c.order_id == invoices.c.order_id).scalar_subquery())
_INVOICES = select(invoices, _paid.label("paid_total"))


async def _with_lines(conn: AsyncConnection, rows: list[Any]) -> list[dict[str, Any]]:
    ids = [row.invoice_id for row in rows]
    lines: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for line in await conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_id.in_(ids))
                                   .order_by(invoice_lines.c.invoice_id, invoice_lines.c.line_no)):
        lines[line.invoice_id].append({
            "line_no": line.line_no, "kind": line.kind, "description": line.description,
            "sku": line.sku, "quantity": line.quantity, "gross": str(line.gross),
            "net": str(line.net), "tax_rate": str(line.tax_rate), "tax": str(line.tax)})
    result = []
    for row in rows:
        account = settlement(row.total, Decimal(row.paid_total), row.currency)
        result.append({
            "invoice_id": row.invoice_id, "order_id": row.order_id,
            "voucher_number": row.voucher_number, "currency": row.currency,
            "net_total": str(row.net_total), "tax_total": str(row.tax_total),
            "total": str(row.total), "paid_total": str(account.paid_total),
            "outstanding": str(account.outstanding),
            "customer_credit": str(account.customer_credit),
            "settled": account.settled, "issued_at": row.issued_at.isoformat(),
            "lines": lines[row.invoice_id],
        })
    return result


async def find_invoices(conn: AsyncConnection, order_id: str | None, limit: int
                        ) -> list[dict[str, Any]]:
    stmt = _INVOICES.order_by(invoices.c.year.desc(), invoices.c.number.desc()).limit(limit)
    if order_id is not None:
        stmt = stmt.where(invoices.c.order_id == order_id)
    return await _with_lines(conn, list(await conn.execute(stmt)))


async def invoice_by_voucher(conn: AsyncConnection, voucher: str) -> dict[str, Any] | None:
    rows = list(await conn.execute(_INVOICES.where(invoices.c.voucher_number == voucher)))
    found = await _with_lines(conn, rows)
    return found[0] if found else None


async def find_payments(conn: AsyncConnection, order_id: str | None, limit: int
                        ) -> list[dict[str, Any]]:
    stmt = select(payments).order_by(payments.c.recorded_at.desc(), payments.c.payment_id)
    if order_id is not None:
        stmt = stmt.where(payments.c.order_id == order_id)
    return [
        {"payment_id": r.payment_id, "order_id": r.order_id, "method": r.method,
         "ledger_category": r.ledger_category, "kind": r.kind, "amount": str(r.amount),
         "currency": r.currency, "captured_at": r.captured_at.isoformat(),
         "recorded_at": r.recorded_at.isoformat(), "event_id": str(r.event_id)}
        for r in await conn.execute(stmt.limit(limit))
    ]


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    """Counts and amounts for ``oms demo``: over every currency, and per currency."""
    invoiced = (await conn.execute(
        select(invoices.c.currency, func.count(), func.sum(invoices.c.total),
               func.count().filter(_paid >= invoices.c.total),
               func.sum(func.greatest(_paid - invoices.c.total, 0)))
        .group_by(invoices.c.currency)
    )).all()
    paid = (await conn.execute(
        select(payments.c.currency, func.count(), func.sum(payments.c.amount))
        .group_by(payments.c.currency)
    )).all()
    zero = Decimal("0.00")
    by_currency: dict[str, dict[str, Any]] = {
        cur: {"invoices": 0, "invoiced_total": zero, "payments": 0, "paid_total": zero,
              "settled_invoices": 0, "customer_credit": zero}
        for cur in sorted({row[0] for row in [*invoiced, *paid]})
    }
    for cur, count, total, settled, credit in invoiced:
        by_currency[cur] |= {"invoices": count, "invoiced_total": total,
                             "settled_invoices": settled, "customer_credit": credit}
    for cur, count, total in paid:
        by_currency[cur] |= {"payments": count, "paid_total": total}
    overall = {key: sum((entry[key] for entry in by_currency.values()), start)
               for key, start in (("invoices", 0), ("invoiced_total", zero), ("payments", 0),
                                  ("paid_total", zero), ("settled_invoices", 0),
                                  ("customer_credit", zero))}

    def wire(values: dict[str, Any]) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}

    return wire(overall) | {"by_currency": {cur: wire(e) for cur, e in by_currency.items()}}
