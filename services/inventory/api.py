"""Inventory's HTTP API: receipts, adjustments, levels, ledger, reservations, backorders, warehouses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.inventory import handlers, skus, views
from services.inventory.catalog import CatalogThresholds
from shared.auth import Principal, current_principal, require_roles
from shared.contract.sku import canonical_sku
from shared.service import ServiceContext, context

router = APIRouter()

Context = Annotated[ServiceContext, Depends(context)]
Reader = Annotated[Principal, Depends(current_principal)]
StockKeeper = Annotated[Principal, Depends(require_roles("warehouse"))]

MAX_RECEIPT = 100_000_000  # keeps balances well inside PostgreSQL integer range


async def kept_sku(ctx: ServiceContext, typed: str, where: tuple[str, ...]) -> str:
    """The SKU inventory keeps for what a person typed (``skus.resolve``: the catalog's, or one
    already kept, whatever the case, spaces or dashes)."""
    catalog = ctx.state.get("thresholds")
    names = catalog.names() if isinstance(catalog, CatalogThresholds) else {}
    async with ctx.engine.connect() as conn:
        try:
            return await skus.resolve_typed(conn, typed, names)
        except skus.AmbiguousSku as error:
            raise HTTPException(422, [{"loc": list(where), "msg": str(error)}]) from None


def _typed(answer: dict[str, Any], typed: str) -> dict[str, Any]:
    """The answer, saying the SKU typed when it was kept under another spelling."""
    return answer if answer.get("sku") == typed else answer | {"sku_as_typed": typed}


class StockPlace(BaseModel):
    """A SKU in a warehouse, as people type them."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    warehouse: str = Field(min_length=1, max_length=64)

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


class ReceiptRequest(StockPlace):
    quantity: int = Field(strict=True, gt=0, le=MAX_RECEIPT, description="whole units received")
    reason: str | None = Field(default=None, max_length=500)


class AdjustmentRequest(StockPlace):
    quantity: int = Field(strict=True, ge=-MAX_RECEIPT, le=MAX_RECEIPT,
                          description="units gained (positive) or lost (negative); not 0")
    reason: str = Field(min_length=1, max_length=500, description="why: count, damage, loss...")

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, value: int) -> int:
        if value == 0:
            raise ValueError("quantity must not be 0 (positive adds units, negative removes them)")
        return value

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must say why the stock is adjusted")
        return value.strip()


class PriorityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int = Field(strict=True, ge=0, description="lower numbers are served first")


@router.post("/stock/receipts", status_code=201, tags=["stock"])
async def receive_stock(body: ReceiptRequest, ctx: Context, who: StockKeeper,
                        x_correlation_id: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    sku = await kept_sku(ctx, body.sku, ("body", "sku"))
    received, event_id = await handlers.receive_stock(
        ctx.engine,
        handlers.Receipt(sku, body.warehouse, body.quantity, body.reason),
        actor=who.actor(),
        correlation_id=x_correlation_id or str(uuid.uuid4()),
        clock=ctx.clock, thresholds=ctx.state.get("thresholds"),
    )
    return _typed(received.wire() | {"event_id": event_id}, body.sku)


@router.post("/stock/adjustments", status_code=201, tags=["stock"])
async def adjust_stock(body: AdjustmentRequest, ctx: Context, who: StockKeeper,
                       x_correlation_id: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Correct on hand by a signed quantity with a reason: ``stock.adjusted`` (key = SKU) and a
    ledger line of kind ``adjusted``; ``adjustment_id`` is the event's id.

    409 when on hand would end below the units reserved in that warehouse (nothing recorded).
    """
    sku = await kept_sku(ctx, body.sku, ("body", "sku"))
    try:
        adjusted = await handlers.adjust_stock(
            ctx.engine,
            handlers.Adjustment(sku, body.warehouse, body.quantity, body.reason),
            actor=who.actor(),
            correlation_id=x_correlation_id or str(uuid.uuid4()),
            clock=ctx.clock, thresholds=ctx.state.get("thresholds"),
        )
    except handlers.AdjustmentRefused as refused:
        raise HTTPException(409, str(refused)) from None
    return _typed(adjusted, body.sku)


@router.get("/stock", tags=["stock"])
async def stock_levels(ctx: Context, _: Reader, warehouse: str | None = None
                       ) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await views.stock_levels(conn, warehouse.strip() if warehouse else None)


@router.get("/stock/{sku}", tags=["stock"])
async def sku_levels(sku: str, ctx: Context, _: Reader) -> dict[str, Any]:
    sku = await kept_sku(ctx, sku, ("path", "sku"))
    async with ctx.engine.connect() as conn:
        levels = await views.sku_levels(conn, sku)
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
    sku = await kept_sku(ctx, sku, ("path", "sku"))
    async with ctx.engine.connect() as conn:
        entries = await views.ledger(conn, sku, limit)
    if not entries:
        raise HTTPException(404, f"SKU {sku!r} has no ledger entries")
    return {"sku": sku, "entries": entries}


@router.get("/stock-ledger/check", tags=["stock"])
async def ledger_check(ctx: Context, _: Reader) -> dict[str, Any]:
    """Every balance and order holding recomputed from the ledger, compared with the live ones."""
    return await handlers.check_ledger(ctx.engine)


@router.get("/reservations/{order_id}", tags=["reservations"])
async def reservation(order_id: str, ctx: Context, _: Reader) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        found = await views.reservation(conn, order_id)
    if found is None:
        raise HTTPException(404, f"inventory has not seen order {order_id!r}")
    return found


@router.get("/backorders", tags=["reservations"])
async def backorder_queue(ctx: Context, _: Reader) -> list[dict[str, Any]]:
    """Orders waiting for stock, in the order they will be served (first short, first served)."""
    async with ctx.engine.connect() as conn:
        return await views.backorder_list(conn)


@router.get("/warehouses", tags=["warehouses"])
async def warehouse_list(ctx: Context, _: Reader) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await views.warehouse_list(conn)


@router.put("/warehouses/{code}/priority", tags=["warehouses"])
async def set_priority(code: str, body: PriorityRequest, ctx: Context, who: StockKeeper,
                       x_correlation_id: Annotated[str | None, Header()] = None
                       ) -> dict[str, Any]:
    """Set a warehouse's serving priority: ``warehouse.priority_set`` (with the previous one and
    who changed it; nothing when it is unchanged, then ``event_id`` is null)."""
    code = code.strip()
    if not code:
        raise HTTPException(422, "code: a warehouse code is required")
    return await handlers.set_warehouse_priority(
        ctx.engine, code, body.priority, clock=ctx.clock,
        actor=who.actor(),
        correlation_id=x_correlation_id or str(uuid.uuid4()))


@router.get("/summary", tags=["ops"])
async def summary(ctx: Context, _: Reader, per_order: bool = False) -> dict[str, Any]:
    """Aggregate counts for ``oms demo``; ``?per_order=true`` adds each order's status and units.

    - ``orders_reserved``: orders that hold or held a reservation (reserved at placement, at a
      presale deposit or when served from the backorder queue) and are not cancelled; an order
      stays counted after its shipments deducted the stock.
    - ``units_reserved``: units reserved right now = reserved - released - deducted over the
      ledger (the sum of every order's current holding).
    - ``orders_short``: orders waiting as a whole in the backorder queue (nothing reserved).
    - ``units_released`` / ``units_deducted`` / ``units_returned``: ledger totals of those kinds.
    - ``backorders_waiting``: queue entries (short orders plus amended orders waiting for extra
      units).
    - ``low_stock_skus``: SKUs with a catalog threshold whose total available across
      warehouses is below it now (sorted). The ``stock.low`` alert itself fires only when a SKU
      crosses from >= threshold to < threshold.
    """
    async with ctx.engine.connect() as conn:
        return await views.summary(conn, per_order)
