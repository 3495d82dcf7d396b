"""Application layer of the order service: load the order, call the domain, persist in one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.handlers.common import OrderDeps
from services.order.handlers.intake import handle_storefront
from services.order.handlers.results import on_billing, on_inventory
from shared.contract.topics import STOREFRONT_ORDERS
from shared.inbox import Incoming

__all__ = ["OrderDeps", "handle"]


async def handle(deps: OrderDeps, conn: AsyncConnection, message: Incoming) -> None:
    """The consumer's entry point (called inside the inbox's transaction, one savepoint each)."""
    if message.topic == STOREFRONT_ORDERS:
        await handle_storefront(deps, conn, message)
        return
    event = message.event
    if event.event_type in ("stock.reserved", "stock.shortage"):
        await on_inventory(deps, conn, event)
    elif event.event_type in ("invoice.issued", "payment.recorded"):
        await on_billing(deps, conn, event)
