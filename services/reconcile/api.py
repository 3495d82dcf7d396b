"""Reconcile's HTTP reads: an order's fact sheet and findings, discrepancies, and the summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from services.reconcile import store
from shared.auth import Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter()


@router.get("/orders/{order_id}")
async def order_fact_sheet(
    order_id: str, ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal)
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.fact_sheet(conn, order_id)
    if found is None:
        raise HTTPException(404, f"no event of order {order_id!r} seen")
    return found


@router.get("/discrepancies")
async def discrepancies(
    open_only: bool = Query(True, alias="open", description="only open ones (false: resolved too)"),
    order_id: str | None = Query(None, description="one order's"),
    kind: str | None = Query(None, description="one kind, e.g. shipped_revenue_not_recognised"),
    limit: int = Query(500, ge=1, le=5000),
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.list_discrepancies(conn, open_only=open_only, order_id=order_id, kind=kind,
                                               limit=limit)
    return {"discrepancies": found, "count": len(found),
            "grace_seconds": ctx.state["grace"].total_seconds()}


@router.get("/summary")
async def summary(
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal)
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
