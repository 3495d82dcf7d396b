"""Reconcile's HTTP reads: one order's fact sheet and assessment, and the summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

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


@router.get("/summary")
async def summary(
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal)
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
