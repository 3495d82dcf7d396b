"""Results from inventory and billing: reservations confirm, shortages backorder, settlement pays."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import store
from services.order.domain import lifecycle
from services.order.domain.state import OrderState
from services.order.handlers.common import OrderDeps, commit, follow, readiness
from shared.contract.envelope import EventEnvelope
from shared.contract.payloads import InvoiceIssued, PaymentRecorded, SkuQuantity, StockShortage


async def _load_known(conn: AsyncConnection, event: EventEnvelope) -> OrderState:
    order_id = event.order_id
    if order_id is None:
        raise ValueError(f"{event.event_type} {event.event_id} carries no order_id")
    state = await store.load_order(conn, order_id)
    if not state.exists:
        raise LookupError(f"{event.event_type} {event.event_id} names unknown order {order_id}")
    return state


async def on_inventory(deps: OrderDeps, conn: AsyncConnection, event: EventEnvelope) -> None:
    state = await _load_known(conn, event)
    if event.event_type == "stock.reserved":
        await store.mark_reserved(conn, state.order_id, str(event.event_id), deps.clock.now())
        decided = lifecycle.confirm_if_ready(state, await readiness(conn, deps, state, reserved=True))
    else:
        await store.mark_short(conn, state.order_id, str(event.event_id), deps.clock.now())
        shortage = StockShortage.model_validate(event.payload)
        missing = [SkuQuantity(sku=m.sku, quantity=m.requested - m.available) for m in shortage.missing]
        decided = lifecycle.on_stock_shortage(state, missing)
    await commit(deps, conn, state, decided, follow(event))


async def on_billing(deps: OrderDeps, conn: AsyncConnection, event: EventEnvelope) -> None:
    voucher: str | None
    if event.event_type == "invoice.issued":
        invoice = InvoiceIssued.model_validate(event.payload)
        settled, paid, voucher = invoice.settled, invoice.paid_total, invoice.voucher_number
    else:
        payment = PaymentRecorded.model_validate(event.payload)
        settled, paid, voucher = payment.settled, payment.paid_total, payment.voucher_number
    if not settled:
        return
    state = await _load_known(conn, event)
    decided_at = None  # the order event billing's settlement followed (stale after a raise?)
    if state.total_raised_at and event.causation_id and _is_uuid(event.causation_id):
        decided_at = await store.event_version(conn, state.order_id, event.causation_id)
    await commit(deps, conn, state, lifecycle.on_settled(state, paid, voucher, decided_at),
                 follow(event))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
