"""Reconcile's own table: one fact sheet per order with its last assessment."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.domain import (
    Assessment,
    InvoiceFact,
    NotificationFact,
    OrderFacts,
    PaymentFact,
    money,
)

metadata = MetaData()

order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", Text, primary_key=True),
    # what order.placed said
    Column("placed", Boolean, nullable=False, default=False),
    Column("currency", Text),
    Column("order_total", Numeric),
    Column("ordered", JSONB, nullable=False, default=dict),  # {sku: quantity}
    # status facts
    Column("confirmed", Boolean, nullable=False, default=False),
    Column("backordered", Boolean, nullable=False, default=False),
    Column("paid_flag", Boolean, nullable=False, default=False),
    Column("cancelled", Boolean, nullable=False, default=False),
    # what inventory, billing and notify said, by their own ids (idempotent), plus the sums
    Column("reservations", JSONB, nullable=False, default=dict),  # {event_id: {sku: quantity}}
    Column("reserved", JSONB, nullable=False, default=dict),  # {sku: quantity}
    Column("invoices", JSONB, nullable=False, default=dict),  # {invoice_id: {voucher_number, ...}}
    Column("invoices_count", Integer, nullable=False, default=0),
    Column("invoiced_total", Numeric, nullable=False, default=0),
    Column("payments", JSONB, nullable=False, default=dict),  # {payment_id: {amount, currency}}
    Column("paid_total", Numeric, nullable=False, default=0),
    Column("notifications", JSONB, nullable=False, default=dict),  # {id: {source_event_type, ...}}
    Column("notifications_count", Integer, nullable=False, default=0),
    # the assessment, recomputed on every event of the order
    Column("status", Text, nullable=False, default="pending"),
    Column("reasons", JSONB, nullable=False, default=list),
    # since when the order has had this status: issue 5 reports pending past a grace period
    Column("status_since", DateTime(timezone=True), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("order_facts_status_since", "status", "status_since"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


async def lock_facts(conn: AsyncConnection, order_id: str, now: datetime) -> Any:
    """The order's row, created when new, locked until the transaction ends.

    Events of one order arrive on four topics and may be handled by different instances at the
    same time; the row lock makes their read-modify-write steps take turns.
    """
    await conn.execute(
        insert(order_facts)
        .values(order_id=order_id, status_since=now, first_seen_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["order_id"])
    )
    return (
        await conn.execute(
            select(order_facts).where(order_facts.c.order_id == order_id).with_for_update()
        )
    ).one()


def facts_from_row(row: Any) -> OrderFacts:
    return OrderFacts(
        order_id=row.order_id,
        placed=row.placed,
        confirmed=row.confirmed,
        backordered=row.backordered,
        paid_flag=row.paid_flag,
        cancelled=row.cancelled,
        currency=row.currency,
        order_total=row.order_total,
        ordered={sku: int(q) for sku, q in row.ordered.items()},
        reservations={
            event_id: {sku: int(q) for sku, q in lines.items()}
            for event_id, lines in row.reservations.items()
        },
        invoices={
            invoice_id: InvoiceFact(i["voucher_number"], Decimal(i["total"]), i["currency"])
            for invoice_id, i in row.invoices.items()
        },
        payments={
            payment_id: PaymentFact(Decimal(p["amount"]), p["currency"])
            for payment_id, p in row.payments.items()
        },
        notifications={
            notification_id: NotificationFact(n["source_event_type"], n["recipient"])
            for notification_id, n in row.notifications.items()
        },
    )


async def save_facts(conn: AsyncConnection, facts: OrderFacts, assessment: Assessment, *,
                     since: datetime, now: datetime) -> None:
    await conn.execute(
        order_facts.update()
        .where(order_facts.c.order_id == facts.order_id)
        .values(
            placed=facts.placed,
            currency=facts.currency,
            order_total=facts.order_total,
            ordered=dict(facts.ordered),
            confirmed=facts.confirmed,
            backordered=facts.backordered,
            paid_flag=facts.paid_flag,
            cancelled=facts.cancelled,
            reservations={k: dict(v) for k, v in facts.reservations.items()},
            reserved=facts.reserved,
            invoices={
                k: {"voucher_number": i.voucher_number, "total": str(i.total), "currency": i.currency}
                for k, i in facts.invoices.items()
            },
            invoices_count=facts.invoices_count,
            invoiced_total=facts.invoiced_total,
            payments={k: {"amount": str(p.amount), "currency": p.currency}
                      for k, p in facts.payments.items()},
            paid_total=facts.paid_total,
            notifications={
                k: {"source_event_type": n.source_event_type, "recipient": n.recipient}
                for k, n in facts.notifications.items()
            },
            notifications_count=facts.notifications_count,
            status=assessment.status,
            reasons=list(assessment.reasons),
            status_since=since,
            updated_at=now,
        )
    )


def _money_text(value: Decimal | None, currency: str | None) -> str | None:
    return None if value is None else money(value, currency)


def sheet(row: Any) -> dict[str, Any]:
    """The fact sheet as JSON for people: amounts as decimal strings, instants in ISO 8601."""
    return {
        "order_id": row.order_id,
        "status": row.status,
        "reasons": list(row.reasons),
        "status_since": row.status_since.isoformat(),
        "facts": {
            "placed": row.placed,
            "confirmed": row.confirmed,
            "backordered": row.backordered,
            "paid_flag": row.paid_flag,
            "cancelled": row.cancelled,
            "currency": row.currency,
            "order_total": _money_text(row.order_total, row.currency),
            "ordered": row.ordered,
            "reserved": row.reserved,
            "invoices_count": row.invoices_count,
            "invoiced_total": _money_text(row.invoiced_total, row.currency),
            "invoices": row.invoices,
            "paid_total": _money_text(row.paid_total, row.currency),
            "payments": row.payments,
            "notifications_count": row.notifications_count,
        },
        "first_seen_at": row.first_seen_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def fact_sheet(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(order_facts).where(order_facts.c.order_id == order_id))).first()
    return None if row is None else sheet(row)


async def summary(conn: AsyncConnection, pending_limit: int = 50) -> dict[str, Any]:
    counts = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(order_facts.c.status == "consistent"),
                func.count().filter(order_facts.c.status == "pending"),
            )
        )
    ).one()
    pending = await conn.execute(
        select(order_facts.c.order_id, order_facts.c.reasons)
        .where(order_facts.c.status == "pending")
        .order_by(order_facts.c.status_since, order_facts.c.order_id)
        .limit(pending_limit)
    )
    return {
        "orders": int(counts[0]),
        "consistent": int(counts[1]),
        "pending": int(counts[2]),
        "pending_orders": [{"order_id": r.order_id, "reasons": list(r.reasons)} for r in pending],
    }
