"""Reconcile's reports per day, channel, customer or salesperson, as JSON, CSV or an HTML page.

Each row: orders placed, their amount, invoiced (invoices not voided), paid (billing's recorded
payments less refunds), matched (applied from bank lines) and open discrepancies, per currency.
Days are the UTC day the order was submitted; ``from``/``to`` (days, included) filter on it.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.bank.store import bank_invoices, matched_per_order, report_orders
from services.reconcile.store import discrepancies
from shared.auth import Principal, current_principal
from shared.service import ServiceContext, context

Dimension = Literal["day", "channel", "customer", "salesperson"]
DIMENSIONS: tuple[Dimension, ...] = ("day", "channel", "customer", "salesperson")
MEASURES = ("orders", "amount", "invoiced", "paid", "matched", "open_discrepancies")
ZERO = Decimal("0.00")
router = APIRouter(tags=["reports"])


@dataclass
class ReportRow:
    key: str
    currency: str
    orders: int = 0
    amount: Decimal = ZERO
    invoiced: Decimal = ZERO
    paid: Decimal = ZERO
    matched: Decimal = ZERO
    open_discrepancies: int = 0

    def cells(self) -> list[str]:
        return [self.key, self.currency, str(self.orders), str(self.amount), str(self.invoiced),
                str(self.paid), str(self.matched), str(self.open_discrepancies)]


@dataclass
class Report:
    dimension: Dimension
    start: date | None
    end: date | None
    rows: list[ReportRow] = field(default_factory=list)

    def columns(self) -> list[str]:
        return [self.dimension, "currency", *MEASURES]

    def as_json(self) -> dict[str, Any]:
        return {"dimension": self.dimension,
                "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None,
                "rows": [dict(zip(self.columns(), row.cells(), strict=True)) for row in self.rows]}


def _key(dimension: Dimension, row: Any) -> str:
    if dimension == "day":
        return str(row.placed_at.astimezone(UTC).date().isoformat())
    value = {"channel": row.channel, "customer": row.customer_id,
             "salesperson": row.salesperson}[dimension]
    return str(value) if value else "(none)"


async def build_report(conn: AsyncConnection, dimension: Dimension, start: date | None = None,
                       end: date | None = None) -> Report:
    query = select(report_orders).where(report_orders.c.placed_at.is_not(None))
    if start:
        query = query.where(report_orders.c.placed_at >= datetime.combine(start, time(), UTC))
    if end:
        query = query.where(report_orders.c.placed_at
                            < datetime.combine(end + timedelta(days=1), time(), UTC))
    orders = list(await conn.execute(query))
    invoiced = {r[0]: Decimal(r[1]) for r in await conn.execute(
        select(bank_invoices.c.order_id, func.sum(bank_invoices.c.total))
        .where(bank_invoices.c.voided.is_(False)).group_by(bank_invoices.c.order_id))}
    matched = await matched_per_order(conn)
    open_counts = {r[0]: int(r[1]) for r in await conn.execute(
        select(discrepancies.c.order_id, func.count())
        .where(discrepancies.c.resolved_at.is_(None)).group_by(discrepancies.c.order_id))}
    grouped: dict[tuple[str, str], ReportRow] = {}
    for order in orders:
        key = (_key(dimension, order), order.currency or "")
        row = grouped.setdefault(key, ReportRow(*key))
        refunded = sum((Decimal(v) for v in (order.refunds or {}).values()), ZERO)
        row.orders += 1
        row.amount += Decimal(order.total or 0)
        row.invoiced += invoiced.get(order.order_id, ZERO)
        row.paid += Decimal(order.paid_total) - refunded
        row.matched += matched.get(order.order_id, ZERO)
        row.open_discrepancies += open_counts.get(order.order_id, 0)
    return Report(dimension, start, end, [grouped[k] for k in sorted(grouped)])


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns())
    for row in report.rows:
        writer.writerow(row.cells())
    return out.getvalue()


def to_html(report: Report) -> str:
    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)

    period = f"{report.start or '…'} to {report.end or '…'}"
    body = "\n".join(f"<tr>{cells(row.cells(), 'td')}</tr>" for row in report.rows)
    title = html.escape(f"Reconcile report per {report.dimension} ({period})")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            "td:nth-child(n+3){text-align:right}</style></head>\n<body><h1>"
            f"{title}</h1>\n<table>\n<thead><tr>{cells(report.columns(), 'th')}</tr></thead>\n"
            f"<tbody>\n{body}\n</tbody>\n</table>\n</body></html>\n")


@router.get("/reports/{dimension}", response_model=None)
async def report(
    dimension: str, fmt: str = Query("json", alias="format", pattern="^(json|csv|html)$"),
    start: date | None = Query(None, alias="from"), end: date | None = Query(None, alias="to"),
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal),
) -> Response | dict[str, Any]:
    if dimension not in DIMENSIONS:
        raise HTTPException(404, f"no report per {dimension!r}; known: {', '.join(DIMENSIONS)}")
    if start and end and start > end:
        raise HTTPException(422, [{"loc": ["query", "from"], "msg": "from is after to"}])
    async with ctx.engine.connect() as conn:
        found = await build_report(conn, dimension, start, end)
    if fmt == "csv":
        return Response(to_csv(found), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="report-{dimension}.csv"'})
    if fmt == "html":
        return HTMLResponse(to_html(found))
    return found.as_json()
