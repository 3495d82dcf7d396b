"""HTTP commands for people: approve/reject, ship, deliver, complete, cancel, amend, receive returns."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.order import store
from services.order.api import deps_of, order_view
from services.order.domain.lifecycle import IllegalTransition, InvalidCommand, WrongRole
from services.order.domain.validation import validate_amendment
from services.order.handlers import commands
from shared.auth import Principal, require_roles
from shared.contract.storefront import Address, Line
from shared.eventstore import ConcurrencyError
from shared.service import ServiceContext, context

router = APIRouter(tags=["order commands"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApproveBody(_Body):
    comment: str | None = Field(default=None, max_length=1000)


class RejectBody(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class ShipLine(_Body):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1_000_000)


class ShipBody(_Body):
    warehouse: str = Field(min_length=1, max_length=64)
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=64)
    lines: list[ShipLine] | None = Field(default=None, description="omit to ship everything left")
    shipment_id: str | None = Field(default=None, max_length=64)


class CancelBody(_Body):
    reason: str = Field(min_length=1, max_length=500)


class AmendBody(_Body):
    request_id: str | None = Field(default=None, max_length=64)
    lines: list[Line] | None = None
    shipping_address: Address | None = None


class ReceiveReturnBody(_Body):
    warehouse: str = Field(min_length=1, max_length=64)


@contextlib.contextmanager
def answers() -> Iterator[None]:
    """Domain refusals as HTTP: 409 with state and allowed actions, 403 with the role needed."""
    try:
        yield
    except IllegalTransition as error:
        raise HTTPException(409, {"message": str(error), "status": error.status,
                                  "allowed_actions": list(error.allowed)}) from None
    except WrongRole as error:
        raise HTTPException(403, str(error)) from None
    except InvalidCommand as error:
        raise HTTPException(422, [{"loc": ["body", *error.field.replace("[", ".").replace("]", "")
                                           .split(".")], "type": error.code,
                                   "msg": str(error)}]) from None
    except commands.UnknownOrder as error:
        raise HTTPException(404, f"no order {error}") from None
    except ConcurrencyError as error:
        raise HTTPException(409, {"message": f"the order kept changing meanwhile; try again ({error})",
                                  "status": None, "allowed_actions": []}) from None


async def _done(ctx: ServiceContext, order_id: str, who: Principal) -> dict[str, Any]:
    if who.role == "warehouse":  # after shipping the order may be out of the warehouse's view
        async with ctx.engine.connect() as conn:
            row = await store.order_row(conn, order_id)
        return {"order_id": order_id, "status": row["status"] if row else None}
    return await order_view(ctx, order_id, who)


@router.post("/orders/{order_id}/approvals/approve")
async def approve(order_id: str, body: ApproveBody, ctx: ServiceContext = Depends(context),
                  who: Principal = Depends(require_roles())) -> dict[str, Any]:
    with answers():
        await commands.approve(deps_of(ctx), ctx.engine, order_id, who, body.comment)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/approvals/reject")
async def reject(order_id: str, body: RejectBody, ctx: ServiceContext = Depends(context),
                 who: Principal = Depends(require_roles())) -> dict[str, Any]:
    with answers():
        await commands.reject(deps_of(ctx), ctx.engine, order_id, who, body.reason)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/shipments")
async def ship(order_id: str, body: ShipBody, ctx: ServiceContext = Depends(context),
               who: Principal = Depends(require_roles("warehouse"))) -> dict[str, Any]:
    lines = [(x.sku, x.quantity) for x in body.lines] if body.lines is not None else None
    with answers():
        await commands.ship(deps_of(ctx), ctx.engine, order_id, who,
                            shipment_id=body.shipment_id or f"SHP-{uuid.uuid4().hex[:12].upper()}",
                            warehouse=body.warehouse, carrier=body.carrier,
                            tracking_number=body.tracking_number, lines=lines)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/delivery")
async def deliver(order_id: str, ctx: ServiceContext = Depends(context),
                  who: Principal = Depends(require_roles("warehouse", "support"))) -> dict[str, Any]:
    with answers():
        await commands.deliver(deps_of(ctx), ctx.engine, order_id, who)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/complete")
async def complete(order_id: str, ctx: ServiceContext = Depends(context),
                   who: Principal = Depends(require_roles("support", "sales_director"))
                   ) -> dict[str, Any]:
    with answers():
        await commands.complete(deps_of(ctx), ctx.engine, order_id, who)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/cancel")
async def cancel(order_id: str, body: CancelBody, ctx: ServiceContext = Depends(context),
                 who: Principal = Depends(require_roles("sales", "sales_director", "support"))
                 ) -> dict[str, Any]:
    with answers():
        await commands.cancel(deps_of(ctx), ctx.engine, order_id, who, body.reason)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/amend")
async def amend(order_id: str, body: AmendBody, ctx: ServiceContext = Depends(context),
                who: Principal = Depends(require_roles("sales", "sales_director", "support"))
                ) -> dict[str, Any]:
    deps = deps_of(ctx)
    async with ctx.engine.connect() as conn:
        row = await store.order_row(conn, order_id)
    if row is None:
        raise HTTPException(404, f"no order {order_id}")
    request_id = body.request_id or f"AMD-{uuid.uuid4().hex[:12].upper()}"
    raw = {"type": "order.amendment_requested", "channel": row["channel"],
           "channel_order_id": row["channel_order_id"], "request_id": request_id,
           "requested_at": deps.clock.now().isoformat(),
           **body.model_dump(mode="json", exclude_none=True, exclude={"request_id"})}
    result = validate_amendment(raw, catalog=deps.catalog.current)
    if isinstance(result, list):
        raise HTTPException(422, [{"loc": ["body", *r.field.replace("[", ".").replace("]", "").split(".")],
                                   "type": r.code, "msg": r.message} for r in result])
    address = body.shipping_address.model_dump(mode="json", exclude_none=True) \
        if body.shipping_address else None
    with answers():
        await commands.amend(deps, ctx.engine, order_id, who, request_id=request_id,
                             lines=result.lines, shipping_address=address)
    return await _done(ctx, order_id, who)


@router.post("/orders/{order_id}/returns/{request_id}/receive")
async def receive_return(order_id: str, request_id: str, body: ReceiveReturnBody,
                         ctx: ServiceContext = Depends(context),
                         who: Principal = Depends(require_roles("warehouse"))) -> dict[str, Any]:
    with answers():
        await commands.receive_return(deps_of(ctx), ctx.engine, order_id, who,
                                      request_id=request_id, warehouse=body.warehouse)
    return await _done(ctx, order_id, who)
