"""Fulfilment: shipping (partial, gift bundles whole), delivery, completion, cancellation, returns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.order.domain.lifecycle import (
    IllegalTransition,
    InvalidCommand,
    _open_returns,
    _returnable,
    _then,
    allowed_actions,
    cancellable,
    shippable,
)
from services.order.domain.state import OrderState, status
from shared.contract.order_events import (
    OrderAmendmentRefused,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderReturned,
    OrderReturnRequested,
    OrderShipped,
    ShippedLine,
)
from shared.contract.payloads import Payload, SkuQuantity


def ship(state: OrderState, *, shipment_id: str, warehouse: str, carrier: str, tracking_number: str,
         lines: Sequence[tuple[str, int]] | None, now: datetime, stock_reserved: bool = True
         ) -> list[Payload]:
    """Ship some or all remaining lines. Gift bundles ship whole or not at all. Nothing ships
    while inventory is short for the order (a presale deposit or an amendment waiting for stock)."""
    if shipment_id in state.shipment_ids:
        return []
    if shippable(state) and not stock_reserved:
        raise IllegalTransition("ship", state, "stock is not reserved yet: the order waits for stock")
    if not shippable(state):
        why = "payment outstanding: prepaid and presale orders ship once paid in full" if (
            state.confirmed and not state.cancelled and not state.fully_shipped) else None
        raise IllegalTransition("ship", state, why)
    wanted = _allocate(state, lines)
    for bundle in {line.gift_bundle for line in state.lines if line.gift_bundle}:
        members = [line for line in state.lines if line.gift_bundle == bundle]
        touched = [line for line in members if wanted.get(line.line_no)]
        if touched and any(wanted.get(x.line_no, 0) != state.remaining(x) for x in members):
            raise InvalidCommand("lines", "bundle_split",
                                 f"gift bundle {bundle!r} ships whole: include every line of it "
                                 f"({', '.join(f'{x.sku} x{state.remaining(x)}' for x in members)})")
    shipped = [ShippedLine(line_no=n, sku=next(x.sku for x in state.lines if x.line_no == n),
                           quantity=q) for n, q in sorted(wanted.items()) if q]
    if not shipped:
        raise InvalidCommand("lines", "nothing_to_ship", "the shipment contains no units")
    after = _then(state, [OrderShipped(order_id=state.order_id, shipment_id=shipment_id,
                                       warehouse=warehouse, carrier=carrier,
                                       tracking_number=tracking_number, lines=shipped,
                                       complete=False, shipped_at=now)])
    events: list[Payload] = [OrderShipped(
        order_id=state.order_id, shipment_id=shipment_id, warehouse=warehouse, carrier=carrier,
        tracking_number=tracking_number, lines=shipped, complete=after.fully_shipped, shipped_at=now)]
    pending = state.approval
    if pending is not None and pending.kind == "amendment":
        # Goods left before anyone approved the change: it can no longer apply.
        events.append(OrderAmendmentRefused(
            order_id=state.order_id, request_id=pending.request_id or "",
            reason="the order shipped before the amendment was approved",
            status=status(after), allowed=list(allowed_actions(after))))
    return events


def _allocate(state: OrderState, lines: Sequence[tuple[str, int]] | None) -> dict[int, int]:
    if lines is None:
        return {line.line_no: state.remaining(line) for line in state.lines}
    wanted: dict[int, int] = {}
    for index, (sku, quantity) in enumerate(lines):
        if quantity <= 0:
            raise InvalidCommand(f"lines[{index}].quantity", "out_of_range", "must be above 0")
        candidates = [x for x in state.lines if x.sku == sku]
        if not candidates:
            raise InvalidCommand(f"lines[{index}].sku", "not_in_order",
                                 f"{sku!r} is not on this order; its SKUs: "
                                 + ", ".join(sorted({x.sku for x in state.lines})))
        left = quantity
        for line in candidates:
            free = state.remaining(line) - wanted.get(line.line_no, 0)
            take = min(free, left)
            if take > 0:
                wanted[line.line_no] = wanted.get(line.line_no, 0) + take
                left -= take
        if left:
            raise InvalidCommand(f"lines[{index}].quantity", "exceeds_remaining",
                                 f"only {quantity - left} of {sku} remain to ship, not {quantity}")
    return wanted


def deliver(state: OrderState, now: datetime) -> list[Payload]:
    if state.delivered:
        return []
    if not state.fully_shipped or state.cancelled:
        raise IllegalTransition("deliver", state, "only a fully shipped order can be delivered")
    return [OrderDelivered(order_id=state.order_id, delivered_at=now)]


def complete(state: OrderState, now: datetime, reason: str) -> list[Payload]:
    if state.completed:
        return []
    if not state.delivered or _open_returns(state):
        raise IllegalTransition("complete", state)
    return [OrderCompleted(order_id=state.order_id, completed_at=now, reason=reason)]


def cancel(state: OrderState, *, reason: str, by: str, request_id: str | None) -> list[Payload]:
    if state.cancelled:
        return []
    if not cancellable(state):
        raise IllegalTransition("cancel", state, "shipped orders are returned, not cancelled")
    return [OrderCancelled(order_id=state.order_id, reason=reason, stage=status(state),
                           request_id=request_id, cancelled_by=by)]


def request_return(state: OrderState, *, request_id: str, lines: Sequence[tuple[str, int]],
                   reason: str) -> list[Payload]:
    if state.return_request(request_id) is not None:
        return []
    if not state.any_shipped or state.cancelled:
        raise IllegalTransition("request_return", state, "nothing has shipped")
    left = _returnable(state)
    for index, (sku, quantity) in enumerate(lines):
        if quantity > left.get(sku, 0):
            raise InvalidCommand(f"lines[{index}].quantity", "exceeds_shipped",
                                 f"{sku}: {left.get(sku, 0)} shipped and not yet returned, not {quantity}")
    return [OrderReturnRequested(order_id=state.order_id, request_id=request_id, reason=reason,
                                 lines=[SkuQuantity(sku=s, quantity=q) for s, q in lines])]


def receive_return(state: OrderState, *, request_id: str, warehouse: str, now: datetime
                   ) -> list[Payload]:
    request = state.return_request(request_id)
    if request is None:
        raise InvalidCommand("request_id", "unknown_return", f"no return {request_id!r} on this order")
    if request.received:
        return []
    return [OrderReturned(order_id=state.order_id, request_id=request_id, warehouse=warehouse,
                          received_at=now,
                          lines=[SkuQuantity(sku=s, quantity=q) for s, q in request.lines])]
