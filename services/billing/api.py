"""Billing's HTTP API: invoices, payments and the summary ``oms demo`` compares."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from services.billing import store
from shared.auth import Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter()

Context = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[Principal, Depends(current_principal)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/invoices", tags=["invoices"])
async def invoices(ctx: Context, _: Reader, order_id: str | None = None, limit: Limit = 500
                   ) -> list[dict[str, Any]]:
    """Invoices, newest voucher first; ``order_id`` narrows to one order's."""
    async with ctx.engine.connect() as conn:
        return await store.find_invoices(conn, order_id, limit)


@router.get("/invoices/{voucher_number}", tags=["invoices"])
async def invoice(voucher_number: str, ctx: Context, _: Reader) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.invoice_by_voucher(conn, voucher_number.strip().upper())
    if found is None:
        raise HTTPException(404, f"no invoice with voucher number {voucher_number!r}")
    return found


@router.get("/payments", tags=["payments"])
async def payments(ctx: Context, _: Reader, order_id: str | None = None, limit: Limit = 500
                   ) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await store.find_payments(conn, order_id, limit)


@router.get("/summary", tags=["ops"])
async def summary(ctx: Context, _: Reader) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
