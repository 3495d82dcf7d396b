"""Order events into stock: placement, deposit, amendment, cancellation, shipment, return.

Each handler runs inside the inbox's transaction (one savepoint per message) and is idempotent
by construction: placements once per order, amendments and returns once per request id,
shipments once per shipment id, cancellations once per order.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory import domain, store
from services.inventory.handlers.session import (
    LedgerSession,
    Thresholds,
    reserved_lines,
    stock_stream,
)
from shared.clock import Clock
from shared.contract.envelope import EventEnvelope
from shared.contract.fulfilment_events import StockDeducted, StockReleased
from shared.contract.order_events import (
    OrderAmended,
    OrderCancelled,
    OrderDepositPaid,
    OrderReturned,
    OrderShipped,
)
from shared.contract.payloads import OrderLine, OrderPlaced, StockReceived
from shared.inbox import Incoming


class UnknownOrder(LookupError):
    """An order event for an order inventory never saw placed (dead-lettered, visible)."""


async def handle_order_event(conn: AsyncConnection, message: Incoming, *, clock: Clock,
                             thresholds: Thresholds | None = None) -> None:
    """Consumer entry point for ``oms.order.events.v1`` (inside the inbox's transaction)."""
    event = message.event
    handler = HANDLERS.get(event.event_type)
    if handler is None:
        return  # not a stock matter
    session = LedgerSession(conn, clock, thresholds or {}, event.correlation_id,
                            cause=event.event_id)
    await handler(session, event)
    await session.finish()


async def on_placed(s: LedgerSession, event: EventEnvelope) -> None:
    """Reserve the whole order (presale: only record it; the deposit reserves)."""
    order = OrderPlaced.model_validate(event.payload)
    demands = [domain.Demand.of(line) for line in order.lines]
    await s.lock(d.sku for d in demands)
    presale = not domain.reserves_at_placement(order.order_type)
    if not await store.create_order(s.conn, order.order_id, order.order_type,
                                    "awaiting_deposit" if presale else "short", demands,
                                    event.event_id, s.now):
        return  # this order was decided before (another event id for the same order)
    if not presale:
        await s.reserve_new(order.order_id, demands, reason="order placed")


async def on_deposit_paid(s: LedgerSession, event: EventEnvelope) -> None:
    """A presale deposit locks the order's stock (once)."""
    paid = OrderDepositPaid.model_validate(event.payload)
    record, _, _ = await _lock_order(s, paid.order_id)
    if record.status != "awaiting_deposit":
        return  # not presale, or its deposit was handled before
    await s.reserve_new(record.order_id, record.lines, reason="presale deposit paid")


async def on_cancelled(s: LedgerSession, event: EventEnvelope) -> None:
    """Give back whatever the order still holds; a waiting order leaves the queue."""
    cancelled = OrderCancelled.model_validate(event.payload)
    record, holdings, waiting = await _lock_order(s, cancelled.order_id)
    if record.status == "cancelled":
        return
    await _release(s, record.order_id, domain.release_everything(
        holdings, await s.serving_order()), "cancelled")
    if waiting is not None:
        await store.remove_waiting(s.conn, record.order_id)
    await store.update_order(s.conn, record.order_id, s.now, status="cancelled")


async def on_amended(s: LedgerSession, event: EventEnvelope) -> None:
    """Apply the per-SKU change (rules in services/inventory/README.md, "order.amended")."""
    amended = OrderAmended.model_validate(event.payload)
    after_lines: list[dict[str, Any]] | None = amended.after.get("lines")
    after = (tuple(domain.Demand.of(OrderLine.model_validate(x)) for x in after_lines)
             if after_lines is not None else None)
    extra_skus = {x.sku for x in amended.lines_delta} | {d.sku for d in after or ()}
    record, holdings, waiting = await _lock_order(s, amended.order_id, extra_skus)
    if not await store.claim_request(s.conn, record.order_id, "amendment", amended.request_id,
                                     event.event_id, s.now):
        return
    if record.status in ("cancelled", "shipped"):
        return
    lines = after if after is not None else record.lines
    await store.update_order(s.conn, record.order_id, s.now, lines=lines)
    delta = {x.sku: x.quantity for x in amended.lines_delta if x.quantity}
    if record.status == "awaiting_deposit" or not delta:
        return
    if record.status == "short":  # still waiting as a whole: it now waits for the new lines
        if not any(d.quantity > 0 for d in lines):
            await store.remove_waiting(s.conn, record.order_id)
            await s.reserve(record.order_id, domain.Reservation(()), reason="nothing left to wait for",
                            first=True)
            return
        await store.put_waiting(s.conn, record.order_id, lines, top_up=False, now=s.now,
                                shortage_event_id=None)
        s.gained |= set(delta)  # a smaller order may fit now; its place in the queue is kept
        return
    split = domain.split_amendment(delta, waiting.demands if waiting else (),
                                   domain.held_per_sku(holdings), lines)
    order = await s.serving_order(holdings)
    releases = [t for sku, qty in split.release.items()
                for t in domain.release_units(holdings, sku, qty, order)]
    await _release(s, record.order_id, releases, "amended", f"amendment {amended.request_id}")
    if waiting is not None:  # extra units already wait: the new ones join them, same place
        still = domain.merge_demands(split.still_waiting, split.extra)
        if still:
            await store.put_waiting(s.conn, record.order_id, still, top_up=True, now=s.now,
                                    shortage_event_id=None)
        else:
            await store.remove_waiting(s.conn, record.order_id)
        s.gained |= set(delta)
    elif split.extra:
        await s.reserve_new(record.order_id, split.extra, top_up=True,
                            preferred=sorted({wh for (_, wh) in holdings}),
                            reason=f"amendment {amended.request_id}")


async def on_shipped(s: LedgerSession, event: EventEnvelope) -> None:
    """Deduct the shipped units from the order's reservation (once per shipment id)."""
    shipped = OrderShipped.model_validate(event.payload)
    quantities = domain.per_sku((x.sku, x.quantity) for x in shipped.lines)
    record, holdings, waiting = await _lock_order(s, shipped.order_id, quantities)
    if not await store.claim_request(s.conn, record.order_id, "shipment", shipped.shipment_id,
                                     event.event_id, s.now):
        return
    takes = domain.plan_deduction(record.order_id, shipped.shipment_id, holdings, quantities,
                                  shipped.warehouse, await s.serving_order(holdings))
    deducted = await s.emit(record.order_id, StockDeducted(
        order_id=record.order_id, shipment_id=shipped.shipment_id, lines=reserved_lines(takes)),
        key=record.order_id)
    await s.move([domain.Movement(t.sku, t.warehouse, "deducted", t.quantity, record.order_id)
                  for t in takes], deducted.event_id,
                 reason=f"shipment {shipped.shipment_id} from {shipped.warehouse}")
    if shipped.complete:  # nothing more will ship: anything still held goes back
        left = domain.release_everything(_less(holdings, takes), await s.serving_order())
        await _release(s, record.order_id, left, "other",
                       f"left over after the complete shipment {shipped.shipment_id}")
        if waiting is not None:
            await store.remove_waiting(s.conn, record.order_id)
        await store.update_order(s.conn, record.order_id, s.now, status="shipped")


async def on_returned(s: LedgerSession, event: EventEnvelope) -> None:
    """Returned goods are back on hand in the return's warehouse (once per return request)."""
    returned = OrderReturned.model_validate(event.payload)
    quantities = domain.per_sku((x.sku, x.quantity) for x in returned.lines if x.quantity > 0)
    await s.lock(quantities)
    if not await store.claim_request(s.conn, returned.order_id, "return", returned.request_id,
                                     event.event_id, s.now):
        return
    await store.ensure_warehouse(s.conn, returned.warehouse, s.now)
    reason = f"return {returned.request_id} of order {returned.order_id}"
    for sku, quantity in quantities.items():
        before = await store.balance(s.conn, sku, returned.warehouse)
        received = await s.emit(stock_stream(sku, returned.warehouse), StockReceived(
            sku=sku, warehouse=returned.warehouse, quantity=quantity,
            on_hand=before.on_hand + quantity, reason=reason), key=sku)
        await s.move([domain.Movement(sku, returned.warehouse, "returned", quantity,
                                      returned.order_id)], received.event_id, reason=reason)


async def _lock_order(s: LedgerSession, order_id: str, extra_skus: Any = ()) -> store.OrderState:
    """Lock every SKU the order involves, then the order itself; the order, its holdings and its
    waiting as they are under those locks (nothing else can change them until commit)."""
    found = await store.order_state(s.conn, order_id)
    if found is None:
        raise UnknownOrder(f"order {order_id} was never placed as far as inventory knows")
    await s.lock(_skus(*found) | set(extra_skus))
    record = await store.load_order(s.conn, order_id, lock=True)
    assert record is not None
    # Read after the order's lock, in a statement of its own: a writer we waited for is visible.
    holdings, waiting = await store.holdings_and_waiting(s.conn, order_id)
    s.require_locked(_skus(record, holdings, waiting))
    return record, holdings, waiting


def _skus(record: store.OrderRecord, holdings: domain.Holdings,
          waiting: domain.Waiting | None) -> set[str]:
    return ({d.sku for d in record.lines} | {sku for (sku, _) in holdings}
            | set(waiting.skus if waiting else ()))


def _less(holdings: domain.Holdings, takes: list[domain.Take]) -> dict[domain.StockKey, int]:
    """The holdings after these takes left them (what the ledger arithmetic wrote)."""
    left = dict(holdings)
    for t in takes:
        left[(t.sku, t.warehouse)] = left.get((t.sku, t.warehouse), 0) - t.quantity
    return {key: qty for key, qty in left.items() if qty > 0}


ReleaseReason = Literal["cancelled", "amended", "approval_rejected", "other"]


async def _release(s: LedgerSession, order_id: str, takes: list[domain.Take],
                   reason: ReleaseReason, note: str | None = None) -> None:
    if not takes:
        return
    released = await s.emit(order_id, StockReleased(order_id=order_id, lines=reserved_lines(takes),
                                                    reason=reason), key=order_id)
    await s.move([domain.Movement(t.sku, t.warehouse, "released", t.quantity, order_id)
                  for t in takes], released.event_id, reason=note or f"order {reason}")


HANDLERS = {
    OrderPlaced.event_type: on_placed,
    OrderDepositPaid.event_type: on_deposit_paid,
    OrderCancelled.event_type: on_cancelled,
    OrderAmended.event_type: on_amended,
    OrderShipped.event_type: on_shipped,
    OrderReturned.event_type: on_returned,
}
