"""Notify's HTTP reads: the delivery log, a recipient's inbox, delivery attempts, the summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from services.notify import store
from services.notify.domain import CHANNELS, parse_recipient
from shared.auth import ROLES, Principal, current_principal
from shared.service import ServiceContext, context

router = APIRouter()

STATUSES = (store.PENDING, store.SENT, store.FAILED)
ATTEMPT_STATUSES = (store.SENT, store.RETRY, store.FAILED)


def _one_of(value: str | None, accepted: tuple[str, ...], name: str) -> None:
    if value is not None and value not in accepted:
        raise HTTPException(422, [{"loc": ["query", name],
                                   "msg": f"{value!r} unknown; accepted: {', '.join(accepted)}"}])


@router.get("/notifications")
async def notifications(
    order_id: str | None = Query(default=None, min_length=1, max_length=64),
    status: str | None = Query(default=None),
    channel: str | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: ServiceContext = Depends(context),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """The delivery log: each notification with its status, attempts and failure reason."""
    _one_of(status, STATUSES, "status")
    _one_of(channel, CHANNELS, "channel")
    async with ctx.engine.connect() as conn:
        found = await store.find_notifications(conn, order_id=order_id, status=status,
                                               channel=channel, limit=limit)
    for item in found:
        item.pop("body", None)  # message text (personal data for customers) only in the inbox
    return {"order_id": order_id, "status": status, "channel": channel, "notifications": found}


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


@router.get("/deliveries")
async def deliveries(
    notification_id: str | None = Query(default=None, min_length=1, max_length=64),
    status: str | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: ServiceContext = Depends(context),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Delivery attempts, newest first: status (sent, retry, failed) and the error."""
    _one_of(status, ATTEMPT_STATUSES, "status")
    async with ctx.engine.connect() as conn:
        found = await store.deliveries(conn, notification_id=notification_id, status=status,
                                       limit=limit)
    return {"deliveries": found}


@router.get("/summary")
async def summary(
    ctx: ServiceContext = Depends(context), _: Principal = Depends(current_principal)
) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await store.summary(conn)
