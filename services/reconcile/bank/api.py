"""Bank statements over HTTP: upload a CSV, read the lines and their matches, and the open items."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from services.reconcile.bank import decisions, store
from services.reconcile.bank.handlers import import_statement, policy_of, rematch
from services.reconcile.bank.matching import MatchPolicy
from services.reconcile.bank.statement import FORMATS, Format, StatementError
from shared.auth import Principal, current_principal, require_roles
from shared.money import to_decimal
from shared.service import ServiceContext, context

router = APIRouter(tags=["bank"])
MAX_BYTES = 20 * 1024 * 1024


def default_policy() -> MatchPolicy:
    """OMS_BANK_MATCH_WINDOW_DAYS (default 7) and OMS_BANK_MATCH_TOLERANCE (default 5.00)."""
    return MatchPolicy(window_days=int(os.environ.get("OMS_BANK_MATCH_WINDOW_DAYS", "7")),
                       tolerance=Decimal(os.environ.get("OMS_BANK_MATCH_TOLERANCE", "5.00")))


@router.post("/bank/statements")
async def upload_statement(
    request: Request,
    fmt: str = Query("standard", alias="format", description="standard | icbc"),
    window_days: int | None = Query(None, ge=0, le=366, description="date window of rules 2-4"),
    tolerance: Decimal | None = Query(None, ge=0, description="partial/overpayment tolerance"),
    ctx: ServiceContext = Depends(context),
    who: Principal = Depends(require_roles("finance", "finance_director")),
) -> dict[str, Any]:
    """Body: the CSV file (text/csv; UTF-8 with or without BOM, or GBK)."""
    if fmt not in FORMATS:
        raise HTTPException(422, [{"loc": ["query", "format"], "msg": f"one of {', '.join(FORMATS)}"}])
    raw = await request.body()
    if not raw:
        raise HTTPException(422, [{"loc": ["body"], "msg": "empty body: send the CSV file"}])
    if len(raw) > MAX_BYTES:
        raise HTTPException(413, f"statement larger than {MAX_BYTES} bytes")
    chosen: Format = "icbc" if fmt == "icbc" else "standard"
    policy = policy_of(window_days, tolerance, ctx.state.get("bank_policy") or default_policy())
    try:
        result = await import_statement(ctx.engine, ctx.clock, raw, chosen, policy,
                                        who.actor())
    except StatementError as error:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(error)}]) from None
    return {**result.describe(), "format": chosen, "window_days": policy.window_days,
            "tolerance": str(policy.tolerance)}


@router.post("/bank/rematch")
async def rematch_unmatched(
    window_days: int | None = Query(None, ge=0, le=366, description="date window of rules 2-4"),
    tolerance: Decimal | None = Query(None, ge=0, description="partial/overpayment tolerance"),
    ctx: ServiceContext = Depends(context),
    who: Principal = Depends(require_roles("finance", "finance_director")),
) -> dict[str, Any]:
    """Match the unmatched money-in lines again, against the invoices known now."""
    policy = policy_of(window_days, tolerance, ctx.state.get("bank_policy") or default_policy())
    return await rematch(ctx.engine, ctx.clock, policy, who.actor())


@router.get("/bank/lines")
async def lines(
    status: str | None = Query(None, pattern="^(matched|unmatched)$"),
    start: date | None = Query(None, alias="from"), end: date | None = Query(None, alias="to"),
    limit: int = Query(1000, ge=1, le=10000),
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.list_lines(conn, status=status, start=start, end=end, limit=limit)
    return {"lines": found, "count": len(found)}


@router.get("/bank/open-items")
async def open_items(
    limit: int = Query(10000, ge=1, le=100000, description="at most this many of each list"),
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Bank lines not matched, lines flagged (a match with a difference, or left to a person) and
    invoices still unpaid, oldest first; ``more`` says which list has more than ``limit``."""
    async with ctx.engine.connect() as conn:
        found = {"unmatched_lines": await store.list_lines(conn, status="unmatched",
                                                           limit=limit + 1),
                 "flagged_lines": await store.list_lines(conn, flagged=True, limit=limit + 1),
                 "unpaid_invoices": await store.unpaid_invoices(conn, limit + 1)}
    return {**{name: rows[:limit] for name, rows in found.items()}, "limit": limit,
            "more": {name: len(rows) > limit for name, rows in found.items()}}


# ---- finance's own decisions (services/reconcile/bank/decisions.py) -----------------------------

Transaction = Path(..., min_length=1, max_length=64, description="the bank's transaction id")


class InvoicePart(BaseModel):
    voucher_number: str = Field(min_length=1, max_length=64)
    # None: what the invoice owes, at most what is left of the line
    amount: Decimal | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal(cls, value: object) -> Decimal | None:
        return None if value is None else to_decimal(value)  # money as decimal strings


class ManualMatch(BaseModel):
    invoices: list[InvoicePart] = Field(min_length=1, max_length=50)
    note: str = Field("", max_length=decisions.NOTE_MAX)


class Note(BaseModel):
    note: str = Field("", max_length=decisions.NOTE_MAX)


async def _decided(work: Any) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = await work
    except decisions.LineNotFound as error:
        raise HTTPException(404, str(error)) from None
    except decisions.DecisionRefused as error:
        raise HTTPException(409, str(error)) from None
    except decisions.BadChoice as error:
        raise HTTPException(422, [{"loc": list(error.where), "msg": str(error)}]) from None
    return answer


@router.post("/bank/lines/{transaction_id}/match")
async def match_line(
    body: ManualMatch, transaction_id: str = Transaction, ctx: ServiceContext = Depends(context),
    who: Principal = Depends(require_roles("finance", "finance_director")),
) -> dict[str, Any]:
    """An unmatched money-in line paid to the invoices named (rule ``manual``); billing books
    each part as a payment."""
    wanted = [decisions.Wanted(part.voucher_number, part.amount) for part in body.invoices]
    return await _decided(decisions.match_by_hand(ctx.engine, ctx.clock, transaction_id, wanted,
                                                  body.note.strip(), who.actor()))


@router.post("/bank/lines/{transaction_id}/confirm")
async def confirm_line(
    body: Note | None = None, transaction_id: str = Transaction,
    ctx: ServiceContext = Depends(context),
    who: Principal = Depends(require_roles("finance", "finance_director")),
) -> dict[str, Any]:
    """A flagged match checked and right: billing books it."""
    note = body.note.strip() if body is not None else ""
    return await _decided(decisions.confirm(ctx.engine, ctx.clock, transaction_id, note,
                                            who.actor()))


@router.post("/bank/lines/{transaction_id}/unmatch")
async def unmatch_line(
    body: Note, transaction_id: str = Transaction, ctx: ServiceContext = Depends(context),
    who: Principal = Depends(require_roles("finance", "finance_director")),
) -> dict[str, Any]:
    """A flagged match found wrong, undone (the note says why): the line is unmatched again."""
    return await _decided(decisions.unmatch(ctx.engine, ctx.clock, transaction_id,
                                            body.note.strip(), who.actor()))
