"""Loading orders' accounts (locked for the transaction) from billing's tables, with what their
rows hold, so ``account_writes`` writes only what a decision changed. Statements are built once
(SQLAlchemy caches their compiled form); an account's child tables are read only when its row
says they hold rows of the order, and many accounts are read with one statement per table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, Text, any_, bindparam, exists, false, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain import (
    Account,
    CreditNote,
    Invoice,
    LineAmount,
    Payment,
    Recognition,
    Refund,
)
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
from shared.contract.payloads import InvoiceLine, OrderPlaced

FACT_COLUMNS = tuple(c.name for c in billing_orders.c if c.name != "order_id")
STANDING_COLUMNS = ("voided", "void_reason", "paid", "credited", "outstanding", "status")


@dataclass(frozen=True, slots=True)
class Stored:
    """An order's account as loaded, and what billing's rows of it hold besides."""

    account: Account
    facts: dict[str, Any]  # the billing_orders columns (FACT_COLUMNS)
    standings: dict[str, tuple[Any, ...]]  # invoice id -> its STANDING_COLUMNS
    streamed: bool  # billing has appended events to the order's stream


def _has(name: str, key: str = "order_id") -> Any:
    return literal_column(
        f"EXISTS (SELECT 1 FROM {name} x WHERE x.{key} = billing_orders.order_id)"
    ).label(f"has_{name}")


_CHILDREN = (document_lines, invoices, payments, recognitions, credit_notes, refunds)
_FLAGS = (*(_has(t.name) for t in _CHILDREN), _has("events", "stream_id"))
_ORDER_ID = bindparam("order_id", type_=Text)
_ORDERS = bindparam("orders", type_=ARRAY(Text))
_ORDER = func.unnest(_ORDERS).column_valued("o")


def _locked_on_conflict(new_rows: Any, **where: Any) -> Any:
    """Rows created when missing and the existing ones locked (ON CONFLICT DO UPDATE locks them;
    with ``where=false()`` it writes nothing to them either)."""
    return new_rows.on_conflict_do_update(
        index_elements=[billing_orders.c.order_id], set_={"order_id": new_rows.excluded.order_id},
        **where)


def _locking(new_rows: Any) -> Any:
    """``_locked_on_conflict``, returning the rows with which child tables hold rows of each
    order, so loading skips the empty ones."""
    return _locked_on_conflict(new_rows).returning(*billing_orders.c, *_FLAGS)


# One round trip. ``unless_paid``: no row made or locked when that payment id is recorded.
_LOCK_ACCOUNT = _locking(insert(billing_orders).from_select(
    [billing_orders.c.order_id], select(_ORDER_ID).where(
        ~exists().where(payments.c.payment_id == bindparam("unless_paid", type_=Text)))))
# Many orders, locked in order-id order, in two round trips: rows made when missing and the
# existing ones locked without writing them again (``DO UPDATE ... WHERE false`` locks the
# conflicting rows; "updating" them wrote a new version of every account row per batch), then
# read by a statement whose snapshot comes after the locks (one taken before waiting for a lock
# could show a row as it was before its holder committed).
_CLAIM_ACCOUNTS = _locked_on_conflict(insert(billing_orders).from_select(
    [billing_orders.c.order_id], select(_ORDER).order_by(_ORDER)), where=false())
_ACCOUNT_ROWS = select(billing_orders, *_FLAGS)
_READ_ACCOUNTS = _ACCOUNT_ROWS.where(billing_orders.c.order_id == any_(_ORDERS))
_SELECT_ACCOUNT = _ACCOUNT_ROWS.where(billing_orders.c.order_id == _ORDER_ID)
_LOCK_EXISTING = _SELECT_ACCOUNT.with_for_update()


async def lock_accounts(conn: AsyncConnection, order_ids: Sequence[str]) -> dict[str, Stored]:
    """The orders' accounts, rows created when missing and locked (one writer at a time)."""
    if not order_ids:
        return {}
    orders = sorted(set(order_ids))
    await conn.execute(_CLAIM_ACCOUNTS, {"orders": orders})
    return await _load(conn, (await conn.execute(_READ_ACCOUNTS, {"orders": orders})).all())


async def lock_account(conn: AsyncConnection, order_id: str, unless_paid: str | None = None
                       ) -> Stored | None:
    """The order's account, its row created when missing and locked; None (and no row made or
    locked) when ``unless_paid`` names a payment recorded already, on whichever order."""
    row = (await conn.execute(_LOCK_ACCOUNT, {"order_id": order_id, "unless_paid": unless_paid})
           ).first()
    return (await _load(conn, [row]))[order_id] if row is not None else None


async def lock_existing(conn: AsyncConnection, order_id: str) -> Stored | None:
    """The order's account locked, or None when billing has no row for the order."""
    row = (await conn.execute(_LOCK_EXISTING, {"order_id": order_id})).first()
    return (await _load(conn, [row]))[order_id] if row is not None else None


async def load_account(conn: AsyncConnection, order_id: str) -> Account | None:
    row = (await conn.execute(_SELECT_ACCOUNT, {"order_id": order_id})).first()
    return (await _load(conn, [row]))[order_id].account if row is not None else None


def _of_orders(column: Any) -> dict[bool, Any]:
    """The condition on ``column`` for one order (False) and for many (True): the statements of
    one order compare with ``=``, which the planner estimates as what it is (an index probe)."""
    return {False: column == _ORDER_ID, True: column == any_(_ORDERS)}


def _reads(table: Table, *order: Any) -> dict[bool, Any]:
    return {many: select(table).where(where).order_by(table.c.order_id, *order)
            for many, where in _of_orders(table.c.order_id).items()}


_LINE_COLUMNS = tuple(c for c in invoice_lines.c if c.name != "invoice_id")
_INVOICES = {many: select(invoices, *(c.label(f"line_{c.name}") for c in _LINE_COLUMNS))
             .select_from(invoices.outerjoin(invoice_lines,
                                             invoice_lines.c.invoice_id == invoices.c.invoice_id))
             .where(where).order_by(invoices.c.order_id, invoices.c.seq, invoice_lines.c.line_no)
             for many, where in _of_orders(invoices.c.order_id).items()}
_CHILD_ROWS = {table: _reads(table, table.c.seq)
               for table in (payments, recognitions, credit_notes, refunds)}
_DOCUMENT_LINES = _reads(document_lines, document_lines.c.document, document_lines.c.n)


class _Rows:
    """The child rows of many orders, read with one statement per table that holds any."""

    def __init__(self, conn: AsyncConnection, rows: Sequence[Any]) -> None:
        self.conn, self.rows = conn, rows
        self.by_order: dict[Table, dict[str, list[Any]]] = {}

    async def read(self, table: Table, statements: dict[bool, Any]) -> None:
        orders = [r.order_id for r in self.rows if r._mapping.get(f"has_{table.name}", True)]
        found: dict[str, list[Any]] = {}
        if orders:
            many = len(orders) > 1
            params = {"orders": orders} if many else {"order_id": orders[0]}
            for row in await self.conn.execute(statements[many], params):
                found.setdefault(row.order_id, []).append(row)
        self.by_order[table] = found

    def of(self, table: Table, order_id: str) -> list[Any]:
        return self.by_order[table].get(order_id, [])


def _amounts(rows: list[Any]) -> tuple[LineAmount, ...]:
    return tuple(LineAmount(r.line_no, r.sku, r.quantity, r.gross, r.net) for r in rows)


def _invoices(rows: list[Any]) -> list[tuple[Any, tuple[InvoiceLine, ...]]]:
    """(invoice row, its lines) from the invoices joined with their lines."""
    grouped: dict[str, tuple[Any, list[InvoiceLine]]] = {}
    for r in rows:
        _, lines = grouped.setdefault(r.invoice_id, (r, []))
        if r.line_line_no is not None:
            lines.append(InvoiceLine(
                kind=r.line_kind, description=r.line_description, sku=r.line_sku,
                quantity=r.line_quantity, gross=r.line_gross, net=r.line_net,
                tax_rate=r.line_tax_rate, tax=r.line_tax))
    return [(row, tuple(lines)) for row, lines in grouped.values()]


async def _load(conn: AsyncConnection, rows: Sequence[Any]) -> dict[str, Stored]:
    """The accounts of ``rows``; child tables a row says are empty (``has_<table>`` False) are
    not read for its order."""
    children = _Rows(conn, rows)
    await children.read(invoices, _INVOICES)
    for table, statement in _CHILD_ROWS.items():
        await children.read(table, statement)
    await children.read(document_lines, _DOCUMENT_LINES)
    return {row.order_id: _stored(row, children) for row in rows}


def _stored(row: Any, children: _Rows) -> Stored:
    order_id = row.order_id
    lines: dict[str, list[Any]] = {}
    for line in children.of(document_lines, order_id):
        lines.setdefault(line.document, []).append(line)
    invoice_rows = _invoices(children.of(invoices, order_id))
    account = Account(
        order_id=order_id,
        order=OrderPlaced.model_validate(row.placed) if row.placed is not None else None,
        confirmed=row.confirmed, cancelled=row.cancelled, requests=frozenset(row.requests),
        invoices=tuple(
            Invoice(r.invoice_id, r.voucher_number, r.kind, r.currency, items, r.net_total,
                    r.tax_total, r.total, r.issued_at, r.due_date, r.voided, r.void_reason)
            for r, items in invoice_rows),
        payments=tuple(
            Payment(r.payment_id, r.method, r.kind, r.amount, r.currency, r.received_at, r.source)
            for r in children.of(payments, order_id)),
        recognitions=tuple(
            Recognition(r.shipment_id, r.voucher_number, r.currency,
                        _amounts(lines.get(r.shipment_id, [])), r.recognized_at)
            for r in children.of(recognitions, order_id)),
        credit_notes=tuple(
            CreditNote(r.credit_note_id, r.voucher_number, r.invoice_voucher_number, r.reason,
                       r.request_id, r.currency, _amounts(lines.get(r.credit_note_id, [])),
                       r.revenue_reversed, r.issued_at)
            for r in children.of(credit_notes, order_id)),
        refunds=tuple(
            Refund(r.refund_id, r.payment_id, r.credit_note_voucher_number, r.method, r.amount,
                   r.currency, r.issued_at)
            for r in children.of(refunds, order_id)),
    )
    mapping = row._mapping
    return Stored(account, {name: mapping[name] for name in FACT_COLUMNS},
                  {r.invoice_id: tuple(getattr(r, c) for c in STANDING_COLUMNS)
                   for r, _ in invoice_rows},
                  bool(mapping.get("has_events", True)))
