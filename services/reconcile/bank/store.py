"""Reconcile's tables for bank matching and reports: orders, invoices, bank lines, allocations."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.bank.matching import MANUAL, Decision, OpenInvoice
from services.reconcile.bank.statement import BankLine
from shared.schemaupgrade import create_or_upgrade

metadata = MetaData()
Money = Numeric(18, 2)

# one row per order placed (and its payments and refunds as billing reports them)
report_orders = Table(
    "report_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("placed_at", DateTime(timezone=True)),  # NULL until order.placed is seen
    Column("channel", Text),
    Column("channel_order_id", Text),
    Column("customer_id", Text),
    Column("salesperson", Text),
    Column("currency", Text),
    Column("total", Money),
    Column("paid_total", Money, nullable=False, server_default=text("0")),
    Column("refunds", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # {refund_id: amount}
)

# the invoices billing issued: the open items bank lines are matched to
bank_invoices = Table(
    "bank_invoices",
    metadata,
    Column("voucher_number", Text, primary_key=True),
    Column("invoice_id", Text, nullable=False),
    Column("order_id", Text, nullable=False, index=True),
    Column("currency", Text, nullable=False),
    Column("total", Money, nullable=False),
    Column("paid", Money, nullable=False),  # paid_total billing reported (its recorded payments)
    Column("credits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # {credit note: total}
    Column("matched", Money, nullable=False, server_default=text("0")),  # applied from bank lines
    # the part of ``matched`` billing booked as payments (in ``paid`` too): {payment id: amount}
    Column("booked", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("voided", Boolean, nullable=False, server_default=text("false")),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

bank_lines = Table(
    "bank_lines",
    metadata,
    Column("transaction_id", Text, primary_key=True),
    Column("booked_on", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", Text, nullable=False),
    Column("counterparty", Text, nullable=False),
    Column("memo", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("source_format", Text, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", Text, nullable=False),
    Column("status", Text, nullable=False),  # matched | unmatched
    Column("rule", Text, nullable=False),
    Column("score", Numeric(4, 2), nullable=False),
    Column("tolerance", Money, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("difference", Money, nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("candidates", JSONB, nullable=False),
    Index("bank_lines_status", "status", "booked_on"),
)

bank_allocations = Table(
    "bank_allocations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("transaction_id", Text, nullable=False, index=True),
    Column("voucher_number", Text, nullable=False),
    Column("order_id", Text, nullable=False, index=True),
    Column("applied", Money, nullable=False),
)


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)


# ---- open items from order and billing events ------------------------------------------------


def _record_order_statement() -> Any:
    columns = ("placed_at", "channel", "channel_order_id", "customer_id", "salesperson",
               "currency", "total")
    stmt = insert(report_orders).values({c: bindparam(c, type_=report_orders.c[c].type)
                                         for c in ("order_id", *columns)})
    return stmt.on_conflict_do_update(index_elements=["order_id"],
                                      set_={c: stmt.excluded[c] for c in columns})


_RECORD_ORDER = _record_order_statement()


async def record_orders(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Upsert orders' report rows (``openitems.placed_order``), in order, in one executemany."""
    if rows:
        await conn.execute(_RECORD_ORDER, rows[0] if len(rows) == 1 else rows)


# What an invoice still owes: its total less what billing reported paid, its credit notes and what
# bank lines were matched to it and billing has not booked yet (what it booked is in ``paid``),
# never below zero (worked out by PostgreSQL for every reader). The credits and bookings are summed
# only where there are some: the sub-select per row, a million times, was a third of reading the
# open items (and kept the rows from being projected in parallel).
def _summed(column: str) -> str:
    return (f"CASE WHEN bank_invoices.{column} = '{{}}'::jsonb THEN 0 ELSE coalesce((SELECT"
            f" sum(value::numeric) FROM jsonb_each_text(bank_invoices.{column})), 0) END")


OUTSTANDING = (
    "round(greatest(bank_invoices.total - bank_invoices.paid - bank_invoices.matched"
    f" + {_summed('booked')} - {_summed('credits')}, 0), 2)")

# The issue day is ``issued_at``'s date in the session's time zone, and the rows come as plain
# tuples in OpenInvoice's field order: a million open items per statement import, 13 s -> a few.
_KNOWN_INVOICES = (
    f"SELECT bank_invoices.voucher_number, bank_invoices.order_id, bank_invoices.currency,"
    f" bank_invoices.total, {OUTSTANDING} AS outstanding, bank_invoices.issued_at::date,"
    " o.channel_order_id, o.customer_id"
    " FROM bank_invoices LEFT JOIN report_orders o ON o.order_id = bank_invoices.order_id"
    " WHERE NOT bank_invoices.voided ORDER BY bank_invoices.issued_at, bank_invoices.voucher_number")


async def known_invoices(conn: AsyncConnection, *, lock: bool = False) -> list[OpenInvoice]:
    """Every invoice not voided, with what is still owed (settled ones too: memos may refer to them)."""
    query = _KNOWN_INVOICES + (" FOR UPDATE OF bank_invoices" if lock else "")
    return list(itertools.starmap(OpenInvoice, await conn.exec_driver_sql(query)))


async def unpaid_invoices(conn: AsyncConnection, limit: int | None = None
                          ) -> list[dict[str, Any]]:
    """Invoices not voided that still owe something, oldest first (at most ``limit``)."""
    outstanding: Any = literal_column(OUTSTANDING)
    rows = await conn.execute(
        select(bank_invoices, report_orders.c.customer_id, report_orders.c.channel_order_id,
               outstanding.label("outstanding"))
        .select_from(bank_invoices.outerjoin(
            report_orders, report_orders.c.order_id == bank_invoices.c.order_id))
        .where(bank_invoices.c.voided.is_(False), outstanding > 0)
        .order_by(bank_invoices.c.issued_at, bank_invoices.c.voucher_number).limit(limit))
    return [{"voucher_number": r.voucher_number, "order_id": r.order_id, "customer_id": r.customer_id,
             "channel_order_id": r.channel_order_id, "currency": r.currency, "total": str(r.total),
             "paid": str(r.paid), "matched": str(r.matched), "outstanding": str(r.outstanding),
             "issued_at": r.issued_at.isoformat()}
            for r in rows]


# ---- bank lines ----------------------------------------------------------------------------------


async def imported_hashes(conn: AsyncConnection, transaction_ids: list[str]) -> dict[str, str]:
    # one array parameter: a statement may have more lines than a query may have parameters
    rows = await conn.execute(text(
        "SELECT transaction_id, content_hash FROM bank_lines"
        " WHERE transaction_id = ANY(CAST(:ids AS text[]))"), {"ids": list(transaction_ids)})
    return {r.transaction_id: r.content_hash for r in rows}


async def _allocate(conn: AsyncConnection, line: BankLine, decision: Decision) -> None:
    for allocation in decision.allocations:
        await conn.execute(insert(bank_allocations).values(
            transaction_id=line.transaction_id, voucher_number=allocation.voucher_number,
            order_id=allocation.order_id, applied=allocation.applied))
        await conn.execute(bank_invoices.update()
                           .where(bank_invoices.c.voucher_number == allocation.voucher_number)
                           .values(matched=bank_invoices.c.matched + allocation.applied))


_LOCK_BANK_LINES = text("SELECT pg_advisory_xact_lock(hashtext('reconcile.bank.import'))")


async def lock_bank_lines(conn: AsyncConnection) -> None:
    """One import, rematch or person's decision at a time, until the transaction ends: each
    decides on the same open invoices and lines."""
    await conn.execute(_LOCK_BANK_LINES)


def line_from_row(row: Any) -> BankLine:
    return BankLine(row.transaction_id, row.booked_on, Decimal(row.amount), row.currency,
                    row.counterparty, row.memo)


async def unmatched_receipts(conn: AsyncConnection) -> list[BankLine]:
    """Money in not matched yet, oldest first, locked until the transaction ends; not the lines
    a person unmatched (rule ``manual``: the rules would match them as before)."""
    rows = await conn.execute(
        select(bank_lines).where(bank_lines.c.status == "unmatched", bank_lines.c.amount > 0,
                                 bank_lines.c.rule != MANUAL)
        .order_by(bank_lines.c.booked_on, bank_lines.c.transaction_id).with_for_update())
    return [line_from_row(r) for r in rows]


async def record_decision(conn: AsyncConnection, line: BankLine, decision: Decision) -> None:
    """A line decided again after its import (a rematch, a person's match or undoing), with the
    allocations the decision makes (none when it leaves the line unmatched)."""
    status = "matched" if decision.matched else "unmatched"
    await conn.execute(bank_lines.update().where(bank_lines.c.transaction_id == line.transaction_id)
                       .values(status=status, rule=decision.rule, score=decision.score,
                               tolerance=decision.tolerance, window_days=decision.window_days,
                               difference=decision.difference, flagged=decision.flagged,
                               reason=decision.reason, candidates=list(decision.candidates)))
    await _allocate(conn, line, decision)


async def list_lines(conn: AsyncConnection, *, status: str | None = None, start: date | None = None,
                     end: date | None = None, limit: int = 1000, flagged: bool | None = None
                     ) -> list[dict[str, Any]]:
    query = select(bank_lines).order_by(bank_lines.c.booked_on, bank_lines.c.transaction_id).limit(limit)
    if status:
        query = query.where(bank_lines.c.status == status)
    if flagged is not None:
        query = query.where(bank_lines.c.flagged.is_(flagged))
    if start:
        query = query.where(bank_lines.c.booked_on >= start)
    if end:
        query = query.where(bank_lines.c.booked_on <= end)
    rows = list(await conn.execute(query))
    allocations: dict[str, list[dict[str, str]]] = {}
    if rows:
        found = await conn.execute(select(bank_allocations).where(  # one array parameter
            bank_allocations.c.transaction_id == any_(
                literal([r.transaction_id for r in rows], ARRAY(Text))))
            .order_by(bank_allocations.c.id))
        for a in found:
            allocations.setdefault(a.transaction_id, []).append(
                {"voucher_number": a.voucher_number, "order_id": a.order_id, "applied": str(a.applied)})
    return [{"transaction_id": r.transaction_id, "booked_on": r.booked_on.isoformat(),
             "amount": str(r.amount), "currency": r.currency, "counterparty": r.counterparty,
             "memo": r.memo, "status": r.status, "rule": r.rule, "score": str(r.score),
             "tolerance": str(r.tolerance), "window_days": r.window_days,
             "difference": str(r.difference), "flagged": r.flagged, "reason": r.reason,
             "candidates": list(r.candidates), "allocations": allocations.get(r.transaction_id, []),
             "imported_at": r.imported_at.isoformat(), "source_format": r.source_format}
            for r in rows]


async def matched_per_order(conn: AsyncConnection) -> dict[str, Decimal]:
    rows = await conn.execute(select(bank_allocations.c.order_id, func.sum(bank_allocations.c.applied))
                              .group_by(bank_allocations.c.order_id))
    return {r[0]: Decimal(r[1]) for r in rows}
