"""Inventory's HTTP API: stock receipts, levels, ledger, reservations, warehouses, summary."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.inventory import handlers, store
from shared.auth import Principal, current_principal, require_roles
from shared.contract.envelope import Actor
from shared.service import ServiceContext, context

router = APIRouter()

Context = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[Principal, Depends(current_principal)]
StockKeeper = Annotated[Principal, Depends(require_roles("warehouse"))]

MAX_RECEIPT = 100_000_000  # keeps balances well inside PostgreSQL integer range


def canonical_sku(raw: str) -> str:
    """SKUs are canonical upstream (``X-100``); people typing them get case and spaces forgiven."""
    return raw.strip().upper()


class ReceiptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(min_length=1, max_length=64)
    quantity: int = Field(strict=True, gt=0, le=MAX_RECEIPT, description="whole units received")
    reason: str | None = Field(default=None, max_length=500)

    @field_validator("sku")
    @classmethod
    def _sku(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("sku must not be blank")
        return canonical_sku(value)

    @field_validator("warehouse")
    @classmethod
    def _warehouse(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("warehouse must not be blank")
        return value.strip()


class PriorityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(strict=True, ge=0, description="lower numbers are served first")


@router.post("/stock/receipts", status_code=201, tags=["stock"])
async def receive_stock(body: ReceiptRequest, ctx: Context, who: StockKeeper,
                        x_correlation_id: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    received, event_id = await handlers.receive_stock(
        ctx.engine,
        handlers.Receipt(body.sku, body.warehouse, body.quantity, body.reason),
        actor=Actor(kind="user", id=who.user, role=who.role),
        correlation_id=x_correlation_id or str(uuid.uuid4()),
        clock=ctx.clock,
    )
    return received.wire() | {"event_id": event_id}


@router.get("/stock", tags=["stock"])
async def stock_levels(ctx: Context, _: Reader, warehouse: str | None = None
                       ) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await store.stock_levels(conn, warehouse.strip() if warehouse else None)


@router.get("/stock/{sku}", tags=["stock"])
async def sku_levels(sku: str, ctx: Context, _: Reader) -> dict[str, Any]:
    sku = canonical_sku(sku)
    async with ctx.engine.connect() as conn:
        levels = await store.sku_levels(conn, sku)
    if not levels:
        raise HTTPException(404, f"no stock has ever been received for SKU {sku!r}")
    return {
        "sku": sku,
        "on_hand": sum(level["on_hand"] for level in levels),
        "reserved": sum(level["reserved"] for level in levels),
        "available": sum(level["available"] for level in levels),
        "warehouses": levels,
    }


@router.get("/stock/{sku}/ledger", tags=["stock"])
async def sku_ledger(sku: str, ctx: Context, _: Reader,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> dict[str, Any]:
    sku = canonical_sku(sku)
    async with ctx.engine.connect() as conn:
        entries = await store.ledger(conn, sku, limit)
    if not entries:
        raise HTTPException(404, f"SKU {sku!r} has no ledger entries")
    return {"sku": sku, "entries": entries}


@router.get("/reservations/{order_id}", tags=["reservations"])
async def reservation(order_id: str, ctx: Context, _: Reader) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await store.reservation(conn, order_id)
    if found is None:
        raise HTTPException(404, f"no reservation decided for order {order_id!r}")
    return found


@router.get("/warehouses", tags=["warehouses"])
async def warehouse_list(ctx: Context, _: Reader) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await store.warehouse_list(conn)


@router.put("/warehouses/{code}/priority", tags=["warehouses"])
async def set_priority(code: str, body: PriorityRequest, ctx: Context, _: StockKeeper
                       ) -> dict[str, Any]:
    code = code.strip()
    await handlers.set_warehouse_priority(ctx.engine, code, body.priority, clock=ctx.clock)
    return {"code": code, "priority": body.priority}


@router.get("/summary", tags=["ops"])
async def summary(ctx: Context, _: Reader, per_order: bool = False) -> dict[str, Any]:
    """Aggregate counts for ``oms demo``; ``?per_order=true`` adds each order's outcome."""
    async with ctx.engine.connect() as conn:
        return await store.summary(conn, per_order)
