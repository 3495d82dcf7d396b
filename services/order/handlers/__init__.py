"""Application layer of the order service: load the order, call the domain, persist in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import store
from services.order.domain.lifecycle import order_id_for
from services.order.handlers.common import OrderDeps
from services.order.handlers.intake import handle_storefront
from services.order.handlers.results import on_billing, on_inventory
from shared.contract.topics import STOREFRONT_ORDERS
from shared.db import json_loads  # what json.loads reads, faster
from shared.inbox import Incoming
from shared.streamlocks import lock_stream

__all__ = ["HANDLED", "OrderDeps", "handle", "named_order", "storefront_fields"]

# The other services' events the order service acts on (the consumer skips the rest unread).
INVENTORY_RESULTS = ("stock.reserved", "stock.shortage")
BILLING_RESULTS = ("invoice.issued", "payment.recorded")
HANDLED = frozenset(INVENTORY_RESULTS + BILLING_RESULTS)


def storefront_fields(message: Incoming) -> dict[str, Any] | None:
    """A storefront message's JSON object (None: not JSON, or not an object)."""
    try:
        raw = json_loads(message.value)
    except (ValueError, UnicodeDecodeError):
        return None
    return raw if isinstance(raw, dict) else None


def named_order(message: Incoming, fields: dict[str, Any] | None = None) -> str | None:
    """The order a message is about, when it can be told without deciding anything
    (``fields``: the storefront message's object, when the caller has read it)."""
    if message.topic != STOREFRONT_ORDERS:
        return message.envelope.order_id if message.envelope is not None else None
    raw = fields if fields is not None else storefront_fields(message)
    if raw is None:
        return None
    channel, channel_order_id = raw.get("channel"), raw.get("channel_order_id")
    if isinstance(channel, str) and isinstance(channel_order_id, str):
        return order_id_for(channel, channel_order_id)
    return None


async def handle(deps: OrderDeps, conn: AsyncConnection, message: Incoming) -> None:
    """The consumer's entry point (called inside the inbox's transaction, one savepoint each).

    The order is locked as the HTTP commands lock it (a batch locked its orders at its start):
    a reservation handled while a person approves the order would otherwise each see the other
    not yet done, and the order would never be confirmed (nothing appended, nothing collides)."""
    order_id = named_order(message)
    if order_id is not None and store.BATCH.get() is None:
        await lock_stream(conn, order_id)
    if message.topic == STOREFRONT_ORDERS:
        await handle_storefront(deps, conn, message)
        return
    event = message.event
    if event.event_type in INVENTORY_RESULTS:
        await on_inventory(deps, conn, event)
    elif event.event_type in BILLING_RESULTS:
        await on_billing(deps, conn, event)
