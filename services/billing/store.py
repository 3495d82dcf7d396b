"""Billing's own tables (order facts, voucher counters, documents, payments) and voucher numbers.

Orders' accounts are loaded by ``account_store`` and saved by ``account_writes``; reads for people
are in ``queries``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
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
    any_,
    bindparam,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.schemaupgrade import create_or_upgrade

metadata = MetaData()
Money = Numeric(asdecimal=True)  # unconstrained: amounts arrive quantised to their currency

billing_orders = Table(
    "billing_orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    # The order.placed payload as received, with amendments applied; NULL until it arrives.
    Column("placed", JSONB),
    Column("placed_event_id", Uuid),
    Column("currency", Text),
    Column("total", Money),
    Column("customer_id", Text),
    Column("payment_method", Text),
    Column("payment_terms", Text),
    Column("confirmed", Boolean, nullable=False, server_default="false"),
    Column("cancelled", Boolean, nullable=False, server_default="false"),
    # Amendment and return request ids already booked.
    Column("requests", JSONB, nullable=False, server_default="[]"),
    Column("customer_credit", Money, nullable=False, server_default="0"),
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
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False),
    Column("seq", Integer, nullable=False),  # issue order within the order
    Column("voucher_number", Text, nullable=False, unique=True),
    Column("series", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("kind", Text, nullable=False),  # full | deposit | balance
    Column("currency", Text, nullable=False),
    Column("net_total", Money, nullable=False),
    Column("tax_total", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("voided", Boolean, nullable=False, server_default="false"),
    Column("void_reason", Text),
    # Standing, rewritten after every change of the order's account.
    Column("paid", Money, nullable=False, server_default="0"),
    Column("credited", Money, nullable=False, server_default="0"),
    Column("outstanding", Money, nullable=False),
    Column("status", Text, nullable=False),  # open | paid | credited | voided
    Column("cause_event_id", Uuid),
    UniqueConstraint("series", "year", "number", name="invoices_voucher_once"),
    Index("invoices_by_order", "order_id"),
    Index("invoices_by_issue", "issued_at"),
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
    Column("seq", Integer, nullable=False),
    Column("method", Text, nullable=False),
    Column("ledger_category", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),  # storefront | finance | bank
    Column("recorded_by", Text),
    Column("cause_event_id", Uuid),
    Index("payments_by_order", "order_id"),
)

recognitions = Table(
    "recognitions",
    metadata,
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False),
    Column("shipment_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("voucher_number", Text),
    Column("currency", Text, nullable=False),
    Column("gross", Money, nullable=False),
    Column("net", Money, nullable=False),
    Column("recognized_at", DateTime(timezone=True), nullable=False),
    Column("cause_event_id", Uuid),
    PrimaryKeyConstraint("order_id", "shipment_id"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("credit_note_id", Text, primary_key=True),
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("voucher_number", Text, nullable=False, unique=True),
    Column("series", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("invoice_voucher_number", Text),
    Column("reason", Text, nullable=False),
    Column("request_id", Text),
    Column("currency", Text, nullable=False),
    Column("net", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("revenue_reversed", Money, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("cause_event_id", Uuid),
    UniqueConstraint("series", "year", "number", name="credit_notes_voucher_once"),
    Index("credit_notes_by_order", "order_id"),
)

# Lines of revenue recognitions (document = shipment id) and credit notes (= credit note id).
document_lines = Table(
    "document_lines",
    metadata,
    Column("order_id", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("n", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),  # 0: the shipping fee
    Column("sku", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("gross", Money, nullable=False),
    Column("net", Money, nullable=False),
    PrimaryKeyConstraint("order_id", "document", "n"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", Text, primary_key=True),
    Column("order_id", Text, ForeignKey("billing_orders.order_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("payment_id", Text, nullable=False),
    Column("credit_note_voucher_number", Text),
    Column("method", Text, nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("cause_event_id", Uuid),
    Index("refunds_by_order", "order_id"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)


# ---- vouchers ---------------------------------------------------------------------------------


_DRAW = insert(voucher_counters).values(series=bindparam("series"), year=bindparam("year"),
                                        last_number=bindparam("count"))
_DRAW_NUMBERS = _DRAW.on_conflict_do_update(
    index_elements=[voucher_counters.c.series, voucher_counters.c.year],
    set_={"last_number": voucher_counters.c.last_number + _DRAW.excluded.last_number},
).returning(voucher_counters.c.last_number)


async def next_voucher_numbers(conn: AsyncConnection, series: str, year: int, count: int
                               ) -> list[int]:
    """The next ``count`` numbers of a series in a year, gapless, in one round trip.

    The upsert takes the counter row's lock (as SELECT ... FOR UPDATE would) until the
    transaction ends: a concurrent issuer waits and then continues from the committed number;
    a rolled-back document takes its increment with it, so no number is skipped.
    """
    last = int((await conn.execute(
        _DRAW_NUMBERS, {"series": series, "year": year, "count": count})).scalar_one())
    return list(range(last - count + 1, last + 1))


class BatchDraws:
    """A batch's voucher numbers: a series' first draw in the batch takes (and locks) the numbers
    from the counter as ``next_voucher_numbers`` does; later draws count on from there in memory,
    holding that lock; ``finish`` adds them to the counter in one statement per series. The same
    numbers as a round trip per draw, and as gapless: a batch that rolls back takes all back."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, int], int] = {}  # the last number given out
        self.owed: dict[tuple[str, int], int] = {}  # given out, not yet added to the counter

    async def draw(self, conn: AsyncConnection, series: str, year: int, count: int) -> list[int]:
        key = (series, year)
        if key not in self.last:
            drawn = await next_voucher_numbers(conn, series, year, count)
            self.last[key], self.owed[key] = drawn[-1], 0
            return drawn
        first = self.last[key] + 1
        self.last[key] += count
        self.owed[key] += count
        return list(range(first, first + count))

    async def finish(self, conn: AsyncConnection) -> None:
        for (series, year), count in sorted(self.owed.items()):
            if count:
                await next_voucher_numbers(conn, series, year, count)
        self.owed.clear()


def voucher_parts(voucher: str) -> tuple[str, int, int]:
    series, year, number = voucher.rsplit("-", 2)
    return series, int(year), int(number)


_PAYMENT = select(payments).where(payments.c.payment_id == bindparam("payment_id"))
_RECORDED = select(payments.c.payment_id).where(
    payments.c.payment_id == any_(bindparam("payment_ids", type_=ARRAY(Text))))


async def payment_row(conn: AsyncConnection, payment_id: str) -> Any | None:
    """The stored payment with this id, on whichever order (payment ids are global)."""
    return (await conn.execute(_PAYMENT, {"payment_id": payment_id})).first()


async def recorded_payments(conn: AsyncConnection, payment_ids: Collection[str]) -> set[str]:
    """Which of these payment ids are recorded already (on any order)."""
    if not payment_ids:
        return set()
    return set((await conn.execute(_RECORDED, {"payment_ids": sorted(set(payment_ids))})).scalars())
