"""Notify's HTTP reads: notifications of an order, a recipient's inbox, the summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from services.notify import store
from services.notify.domain import parse_recipient
from shared.auth import ROLES, Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter()


@router.get("/notifications")
async def notifications_of_order(
    order_id: str = Query(min_length=1, max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: ServiceContext = Depends(context),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.notifications_of_order(conn, order_id, limit)
    return {"order_id": order_id, "notifications": found}


@router.get("/inbox/{recipient}")
async def inbox(
    recipient: str,
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: ServiceContext = Depends(context),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    try:
        kind, ident = parse_recipient(recipient)
    except ValueError as error:
        raise HTTPException(422, [{"loc": ["path", "recipient"], "msg": str(error)}]) from None
    if kind == "role" and ident not in ROLES:
        raise HTTPException(
            422, [{"loc": ["path", "recipient"],
                   "msg": f"unknown role {ident!r}; accepted: {', '.join(ROLES)}"}],
        )
    async with ctx.engine.connect() as conn:
        found = await store.inbox_of(conn, recipient, limit)
    return {"recipient": recipient, "notifications": found}


@router.get("/summary")
async def summary(
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal)
) -> dict[str, int]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
