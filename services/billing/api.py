"""Billing's HTTP API: invoices, receivables, payments (and entering one), credit notes, refunds,
the invoice export and the summary ``oms demo`` compares. Reads need any valid API key."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.billing import domain, handlers, queries
from shared.auth import Principal, current_principal, require_roles
from shared.contract.bank_events import BANK_PAYMENT_PREFIX, RESERVED_PAYMENT_ID
from shared.money import MINOR_UNITS, known_currency, to_decimal
from shared.service import ServiceContext, context

router = APIRouter()

Context = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[Principal, Depends(current_principal)]
Finance = Annotated[Principal, Depends(require_roles("finance", "finance_director"))]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/invoices", tags=["invoices"])
async def invoices(ctx: Context, _: Reader, order_id: str | None = None, limit: Limit = 500
                   ) -> list[dict[str, Any]]:
    """Invoices, newest voucher first; ``order_id`` narrows to one order's (voided ones too)."""
    async with ctx.engine.connect() as conn:
        return await queries.find_invoices(conn, order_id, limit)


@router.get("/invoices/export.csv", tags=["invoices"], response_class=PlainTextResponse)
async def export(ctx: Context, _: Reader,
                 start: Annotated[date, Query(alias="from", description="first issue day (UTC)")],
                 end: Annotated[date, Query(alias="to", description="last issue day (UTC)")],
                 ) -> Response:
    """Invoices issued from ``from`` to ``to`` (days included) as CSV, in voucher order."""
    if end < start:
        raise HTTPException(422, [{"loc": ["query", "to"], "type": "value_error",
                                   "msg": f"'to' ({end}) is before 'from' ({start})"}])
    async with ctx.engine.connect() as conn:
        rows = await queries.export_rows(conn, start, end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(queries.EXPORT_COLUMNS)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="invoices-{start}-{end}.csv"'})


@router.get("/invoices/{voucher_number}", tags=["invoices"])
async def invoice(voucher_number: str, ctx: Context, _: Reader) -> dict[str, Any]:
    """One invoice: lines, payments allocated to it, credit notes on it, status and due date."""
    async with ctx.engine.connect() as conn:
        found = await queries.invoice_detail(conn, voucher_number.strip().upper())
    if found is None:
        raise HTTPException(404, f"no invoice with voucher number {voucher_number!r}")
    return found


@router.get("/receivables", tags=["invoices"])
async def receivables(ctx: Context, _: Reader, as_of: date | None = None) -> dict[str, Any]:
    """Open invoices by days past due (current, 1-30, 31-60, 61-90, 90+), as of a day (today)."""
    async with ctx.engine.connect() as conn:
        return await queries.receivables(conn, as_of or ctx.clock.now().date())


@router.get("/payments", tags=["payments"])
async def payments(ctx: Context, _: Reader, order_id: str | None = None,
                   method: str | None = None, limit: Limit = 500) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await queries.find_payments(conn, order_id, method, limit)


class PaymentEntry(BaseModel):
    """A payment finance saw arrive (bank transfer, usually)."""

    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=100)
    payment_id: str = Field(min_length=1, max_length=200)
    method: str
    amount: Decimal
    currency: str
    received_at: datetime | None = None

    @field_validator("payment_id")
    @classmethod
    def _not_a_bank_line(cls, value: str) -> str:
        # Billing books those itself, from reconcile's matches (a flagged one once finance
        # confirmed it there): entered here too, reconcile could count a line's money twice.
        if value.startswith(BANK_PAYMENT_PREFIX):
            raise ValueError(RESERVED_PAYMENT_ID)
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value not in domain.LEDGER_CATEGORIES:
            raise ValueError(f"unknown payment method {value!r}; accepted: "
                             f"{', '.join(domain.LEDGER_CATEGORIES)}")
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal(cls, value: object) -> Decimal:
        return to_decimal(value)  # refuses floats: money travels as decimal strings

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not known_currency(value):
            raise ValueError(f"unknown currency {value!r}; accepted: {', '.join(MINOR_UNITS)}")
        return value

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-21T10:00:00+08:00")
        return value

    def check_amount(self) -> None:
        places = MINOR_UNITS[self.currency]
        if self.amount <= 0 or self.amount != round(self.amount, places):
            raise HTTPException(422, [{"loc": ["body", "amount"], "type": "value_error",
                                       "msg": f"must be above 0 with at most {places} decimals "
                                              f"in {self.currency}, not {self.amount}"}])


@router.post("/payments", tags=["payments"], status_code=201)
async def enter_payment(entry: PaymentEntry, ctx: Context, who: Finance, response: Response
                        ) -> dict[str, Any]:
    """Record a payment (finance roles). Sent again with the same payment id and content, the
    first recording is answered (200); with other content, 409."""
    entry.check_amount()
    transfer = handlers.Transfer(entry.order_id, entry.payment_id, entry.method, entry.amount,
                                 entry.currency, entry.received_at)
    try:
        created, payment = await handlers.record_transfer(ctx.engine, transfer, who, ctx.clock)
    except handlers.UnknownOrder as error:
        raise HTTPException(404, str(error)) from None
    except handlers.PaymentConflict as error:
        raise HTTPException(409, str(error)) from None
    except domain.BillingRefusal as error:
        raise HTTPException(422, [{"loc": ["body", "currency"], "type": "value_error",
                                   "msg": str(error)}]) from None
    if not created:
        response.status_code = 200
    return payment


@router.get("/credit-notes", tags=["credit notes"])
async def credit_notes(ctx: Context, _: Reader, order_id: str | None = None, limit: Limit = 500
                       ) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await queries.find_credit_notes(conn, order_id, limit)


@router.get("/refunds", tags=["credit notes"])
async def refunds(ctx: Context, _: Reader, order_id: str | None = None, limit: Limit = 500
                  ) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await queries.find_refunds(conn, order_id, limit)


@router.get("/summary", tags=["ops"])
async def summary(ctx: Context, _: Reader) -> dict[str, Any]:
    """Aggregates for ``oms demo``; ``keys`` says what each one means."""
    async with ctx.engine.connect() as conn:
        return await queries.summary(conn)
