"""HTTP for people: orders by id or storefront reference with their history, rejections, summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from services.order import store
from shared import eventstore
from shared.auth import Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter(tags=["orders"])


def _timeline(stored: list[eventstore.StoredEvent]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(e.envelope.event_id), "event_type": e.envelope.event_type,
            "version": e.envelope.stream_version, "occurred_at": e.envelope.occurred_at.isoformat(),
            "actor": e.envelope.actor.model_dump(), "payload": e.envelope.payload, "hash": e.hash,
        }
        for e in stored
    ]


async def _order_view(ctx: ServiceContext, order_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await store.order_row(conn, order_id)
        if row is None:
            raise HTTPException(404, f"no order {order_id}")
        history = await eventstore.read_stream(conn, order_id)
    row = {k: (str(v) if not isinstance(v, int | list | dict | type(None)) else v) for k, v in row.items()}
    return {"order": row, "events": _timeline(history)}


@router.get("/orders/{order_id}")
async def get_order(order_id: str, ctx: ServiceContext = Depends(context),
                    _: Principal = Depends(current_principal)) -> dict[str, Any]:
    return await _order_view(ctx, order_id)


@router.get("/orders/by-channel/{channel}/{channel_order_id}")
async def get_order_by_channel(channel: str, channel_order_id: str,
                               ctx: ServiceContext = Depends(context),
                               _: Principal = Depends(current_principal)) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        order_id = await store.find_by_channel(conn, channel, channel_order_id)
    if order_id is None:
        raise HTTPException(404, f"no {channel} order {channel_order_id!r}")
    return await _order_view(ctx, order_id)


@router.get("/orders")
async def search_orders(status: str | None = None, channel: str | None = None,
                        customer_id: str | None = None, limit: int = Query(50, ge=1, le=500),
                        offset: int = Query(0, ge=0), ctx: ServiceContext = Depends(context),
                        _: Principal = Depends(current_principal)) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        rows = await store.search(conn, status=status, channel=channel, customer_id=customer_id,
                                  limit=limit, offset=offset)
    return {"orders": [{k: (str(v) if k in ("total", "captured_total", "placed_at", "updated_at")
                            else v) for k, v in r.items()} for r in rows],
            "limit": limit, "offset": offset}


@router.get("/rejections")
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


@router.get("/summary")
async def summary(ctx: ServiceContext = Depends(context),
                  _: Principal = Depends(current_principal)) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
