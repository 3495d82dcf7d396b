"""HTTP reads for people: search, order detail with timeline, approvals inbox, rejections, tracking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from services.order import store, tracking
from services.order.domain.lifecycle import allowed_actions
from services.order.domain.state import status
from services.order.handlers import OrderDeps
from shared import eventstore
from shared.auth import Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter(tags=["orders"])

READY_TO_SHIP = ["confirmed", "deposit_paid", "paid", "partially_shipped"]
PAYMENT_EVENTS = {"order.payment_captured", "order.paid", "order.deposit_paid"}
MONEY_KEYS = {"total", "subtotal", "discount_total", "shipping_fee", "captured_total", "paid",
              "payment", "discounts", "unit_price", "amount", "paid_amount", "deposit_amount",
              "total_before", "total_after", "declared_value"}


def deps_of(ctx: ServiceContext) -> OrderDeps:
    deps: OrderDeps = ctx.state["deps"]
    return deps


def strip_money(value: Any) -> Any:
    """The warehouse sees what to ship, never what it cost or how it was paid."""
    if isinstance(value, dict):
        return {k: strip_money(v) for k, v in value.items() if k not in MONEY_KEYS}
    if isinstance(value, list):
        return [strip_money(v) for v in value]
    return value


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else str(v) if k in (
        "total", "captured_total") and v is not None else v) for k, v in row.items()}


def _timeline(stored: list[eventstore.StoredEvent]) -> list[dict[str, Any]]:
    return [{"event_id": str(e.envelope.event_id), "event_type": e.envelope.event_type,
             "version": e.envelope.stream_version, "occurred_at": e.envelope.occurred_at.isoformat(),
             "actor": e.envelope.actor.model_dump(), "payload": e.envelope.payload, "hash": e.hash}
            for e in stored]


async def order_view(ctx: ServiceContext, order_id: str, who: Principal) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await store.order_row(conn, order_id)
        if row is None:
            raise HTTPException(404, f"no order {order_id}")
        history = await eventstore.read_stream(conn, order_id)
        state = await store.load_order(conn, order_id)
    view: dict[str, Any] = {"order": _row(row), "lines": [x.model_dump(mode="json") for x in state.lines],
            "shipping_address": state.shipping_address, "allowed_actions": list(allowed_actions(state)),
            "events": _timeline(history),
            "tracking_token": tracking.tracking_token(ctx.settings.tracking_secret, order_id)}
    if state.approval is not None:
        view["approval"] = {"kind": state.approval.kind, "rule_id": state.approval.rule_id,
                            "rules_version": state.approval.rules_version,
                            "level": state.approval.level, "levels": state.approval.levels,
                            "waiting_for": list(state.approval.roles_allowed()),
                            "due_at": state.approval.due_at.isoformat(),
                            "escalations": state.approval.escalations}
    if who.role == "warehouse":
        if row["status"] not in READY_TO_SHIP or "ship" not in view["allowed_actions"]:
            raise HTTPException(403, "the warehouse sees only orders ready to ship")
        view["events"] = [e for e in view["events"] if e["event_type"] not in PAYMENT_EVENTS]
        view = strip_money(view)
    return view


@router.get("/orders/{order_id}")
async def get_order(order_id: str, ctx: ServiceContext = Depends(context),
                    who: Principal = Depends(current_principal)) -> dict[str, Any]:
    return await order_view(ctx, order_id, who)


@router.get("/orders/by-channel/{channel}/{channel_order_id}")
async def get_order_by_channel(channel: str, channel_order_id: str,
                               ctx: ServiceContext = Depends(context),
                               who: Principal = Depends(current_principal)) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        order_id = await store.find_by_channel(conn, channel, channel_order_id)
    if order_id is None:
        raise HTTPException(404, f"no {channel} order {channel_order_id!r}")
    return await order_view(ctx, order_id, who)


@router.get("/orders")
async def search_orders(status_in: list[str] | None = Query(None, alias="status"),
                        channel: str | None = None, customer_id: str | None = None,
                        placed_from: datetime | None = Query(None, alias="from"),
                        placed_to: datetime | None = Query(None, alias="to"),
                        flag: str | None = None, limit: int = Query(50, ge=1, le=500),
                        offset: int = Query(0, ge=0), ctx: ServiceContext = Depends(context),
                        who: Principal = Depends(current_principal)) -> dict[str, Any]:
    statuses = status_in
    if who.role == "warehouse":
        statuses = [s for s in (status_in or READY_TO_SHIP) if s in READY_TO_SHIP]
    async with ctx.engine.connect() as conn:
        rows, total = await store.search(conn, statuses=statuses, channel=channel,
                                         customer_id=customer_id, placed_from=placed_from,
                                         placed_to=placed_to, flag=flag, limit=limit, offset=offset)
    found = [_row(r) for r in rows]
    if who.role == "warehouse":
        found = strip_money(found)
    return {"orders": found, "total": total, "limit": limit, "offset": offset}


@router.get("/approvals", tags=["approvals"])
async def approvals_inbox(role: str | None = None, ctx: ServiceContext = Depends(context),
                          who: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Approvals waiting for the caller's role (or an escalation to it); admins may pick a role."""
    wanted = role if who.role == "admin" else who.role
    async with ctx.engine.connect() as conn:
        rows = await store.approvals_for(conn, wanted)
    return {"role": wanted, "approvals": [_row(r) for r in rows]}


@router.get("/rejections", tags=["intake"])
async def list_rejections(channel: str | None = None, limit: int = Query(50, ge=1, le=500),
                          ctx: ServiceContext = Depends(context),
                          _: Principal = Depends(current_principal)) -> dict[str, Any]:
    events = eventstore.events
    query = (select(events.c.event_id, events.c.occurred_at, events.c.payload)
             .where(events.c.event_type == "submission.rejected")
             .order_by(events.c.position.desc()).limit(limit))
    if channel:
        query = query.where(events.c.payload["channel"].astext == channel)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {"rejections": [{"event_id": str(r.event_id), "occurred_at": r.occurred_at.isoformat(),
                            **r.payload} for r in rows]}


@router.get("/summary", tags=["ops"])
async def summary(ctx: ServiceContext = Depends(context),
                  _: Principal = Depends(current_principal)) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)


@router.get("/track/{order_id}", tags=["customers"])
async def track(order_id: str, token: str = Query(min_length=8),
                ctx: ServiceContext = Depends(context)) -> dict[str, Any]:
    """For the customer: needs only the order id and its tracking token; personal data masked."""
    if not tracking.token_matches(ctx.settings.tracking_secret, order_id, token):
        raise HTTPException(404, "no order with this id and token")
    async with ctx.engine.connect() as conn:
        state = await store.load_order(conn, order_id)
        history = await eventstore.read_stream(conn, order_id)
    if not state.exists:
        raise HTTPException(404, "no order with this id and token")
    shipments = [{k: e.envelope.payload.get(k) for k in
                  ("shipment_id", "carrier", "tracking_number", "lines", "shipped_at")}
                 for e in history if e.envelope.event_type == "order.shipped"]
    visible = [e for e in history if e.envelope.event_type not in (
        "order.approval_requested", "order.approved", "order.approval_rejected",
        "order.approval_escalated", "order.payment_captured")]
    return {"order_id": order_id, "status": status(state),
            "timeline": [{"event": e.envelope.event_type,
                          "at": e.envelope.occurred_at.isoformat()} for e in visible],
            "shipments": strip_money(shipments),
            "lines": [{"sku": x.sku, "name": x.name, "quantity": x.quantity} for x in state.lines],
            "ship_to": tracking.masked_address(state.shipping_address)}
