"""Application layer of the order service: load the order, decide, append events + projection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import domain, store
from services.order.domain.catalog import Catalog
from services.order.domain.validation import (
    AcceptedSubmission,
    envelope_reasons,
    reason,
    validate_payment,
    validate_submission,
)
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, Actor, EventEnvelope
from shared.contract.payloads import (
    InvoiceIssued,
    Payload,
    PaymentRecorded,
    RejectionReason,
    SkuQuantity,
    StockShortage,
    SubmissionRejected,
)
from shared.contract.storefront import storefront_key
from shared.contract.topics import STOREFRONT_ORDERS
from shared.eventstore import Meta, append
from shared.inbox import Incoming
from shared.logging import get_logger

log = get_logger(__name__)
MAX_STORED_MESSAGE = 64 * 1024


@dataclass
class OrderDeps:
    catalog: Catalog
    clock: Clock


async def handle(deps: OrderDeps, conn: AsyncConnection, message: Incoming) -> None:
    if message.topic == STOREFRONT_ORDERS:
        await handle_storefront(deps, conn, message)
        return
    event = message.event
    if event.event_type in ("stock.reserved", "stock.shortage"):
        await on_inventory(deps, conn, event)
    elif event.event_type in ("invoice.issued", "payment.recorded"):
        await on_billing(deps, conn, event)


async def _commit(deps: OrderDeps, conn: AsyncConnection, state: domain.OrderState,
                  new_events: Sequence[Payload], meta: Meta) -> domain.OrderState:
    """Append the decided events and update the projection, in the caller's transaction."""
    if not new_events:
        return state
    envelopes = await append(conn, state.order_id, state.version, new_events, meta=meta,
                             clock=deps.clock, key=state.order_id)
    for env in envelopes:
        state = domain.evolve(state, env.event_type, env.payload, env.stream_version)
    await store.save_projection(conn, state, deps.clock.now())
    return state


# ---- storefront messages -----------------------------------------------------------------


async def handle_storefront(deps: OrderDeps, conn: AsyncConnection, message: Incoming) -> None:
    try:
        raw: Any = json.loads(message.value)
    except (ValueError, UnicodeDecodeError) as error:
        await reject(deps, conn, message, None, [reason("$", "invalid_json", f"not valid JSON: {error}")])
        return
    problems = envelope_reasons(raw, len(message.value))
    if problems:
        await reject(deps, conn, message, raw, problems)
        return
    kind = raw["type"]
    if kind == "order.submitted":
        await submit(deps, conn, message, raw)
    elif kind == "payment.captured":
        await capture(deps, conn, message, raw)
    else:
        await reject(deps, conn, message, raw, [reason(
            "type", "not_supported", f"{kind} is not handled by this version of the order service yet")])


async def reject(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: Any,
                 reasons: list[RejectionReason]) -> None:
    """Every refusal is a stored, published fact (``submission.rejected``), never only a log line."""
    fields = raw if isinstance(raw, dict) else {}
    channel = fields.get("channel") if isinstance(fields.get("channel"), str) else None
    channel_order_id = (fields.get("channel_order_id")
                        if isinstance(fields.get("channel_order_id"), str) else None)
    stored: Any = raw
    if raw is None or len(message.value) > MAX_STORED_MESSAGE:
        stored = message.value[:MAX_STORED_MESSAGE].decode("utf-8", errors="replace")
    key = storefront_key(fields) if channel and channel_order_id else str(message.message_id)
    payload = SubmissionRejected(
        message_type=fields.get("type") if isinstance(fields.get("type"), str) else None,
        channel=channel, channel_order_id=channel_order_id, message=stored, reasons=reasons,
    )
    meta = Meta(correlation_id=str(message.message_id),
                actor=Actor(kind="storefront", id=channel or "unknown"),
                causation_id=str(message.message_id))
    await append(conn, f"rejection:{key}", None, [payload], meta=meta, clock=deps.clock, key=key)
    log.info("storefront message rejected", key=key, reasons=[r.code for r in reasons])


async def submit(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]) -> None:
    result = validate_submission(raw, catalog=deps.catalog, now=deps.clock.now())
    if isinstance(result, list):
        await reject(deps, conn, message, raw, result)
        return
    accepted: AcceptedSubmission = result
    sub = accepted.message
    order_id = domain.order_id_for(sub.channel, sub.channel_order_id)
    state = await store.load_order(conn, order_id)
    digest = domain.content_hash(raw)
    if state.exists:
        if state.content_hash == digest:
            log.info("same submission again: no effect", order_id=order_id)
            return
        await reject(deps, conn, message, raw, [reason(
            "channel_order_id", "conflicting_duplicate",
            f"{sub.channel} order {sub.channel_order_id!r} was already submitted with different "
            f"content (order {order_id}); send an amendment instead")])
        return
    placed = domain.placed_from(order_id, sub, accepted.lines, accepted.subtotal,
                                accepted.discount_total, accepted.total, digest, sub.submitted_at)
    meta = Meta(correlation_id=order_id, actor=Actor(kind="storefront", id=sub.channel),
                causation_id=str(message.message_id))
    await _commit(deps, conn, state, domain.place(state, placed), meta)


async def capture(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]) -> None:
    result = validate_payment(raw)
    if isinstance(result, list):
        await reject(deps, conn, message, raw, result)
        return
    order_id = domain.order_id_for(result.channel, result.channel_order_id)
    state = await store.load_order(conn, order_id)
    if not state.exists:
        await reject(deps, conn, message, raw, [reason(
            "channel_order_id", "unknown_order",
            f"no {result.channel} order {result.channel_order_id!r} was submitted")])
        return
    if result.currency and result.currency != state.currency:
        await reject(deps, conn, message, raw, [reason(
            "currency", "currency_mismatch", f"the order is in {state.currency}, not {result.currency}")])
        return
    try:
        new_events = domain.capture_payment(state, result, state.currency)
    except domain.IllegalTransition as error:
        await reject(deps, conn, message, raw, [reason("type", "illegal_transition", str(error))])
        return
    meta = Meta(correlation_id=order_id, actor=Actor(kind="storefront", id=result.channel),
                causation_id=str(message.message_id))
    await _commit(deps, conn, state, new_events, meta)


# ---- results from other services ---------------------------------------------------------


def _follow(event: EventEnvelope) -> Meta:
    return Meta(correlation_id=event.correlation_id, actor=SYSTEM, causation_id=str(event.event_id))


async def _load_known(conn: AsyncConnection, event: EventEnvelope) -> domain.OrderState:
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
        decided = domain.on_stock_reserved(state, str(event.event_id))
    else:
        shortage = StockShortage.model_validate(event.payload)
        missing = [SkuQuantity(sku=m.sku, quantity=m.requested - m.available) for m in shortage.missing]
        decided = domain.on_stock_shortage(state, missing)
    await _commit(deps, conn, state, decided, _follow(event))


async def on_billing(deps: OrderDeps, conn: AsyncConnection, event: EventEnvelope) -> None:
    if event.event_type == "invoice.issued":
        invoice = InvoiceIssued.model_validate(event.payload)
        settled, paid, voucher = invoice.settled, invoice.paid_total, invoice.voucher_number
    else:
        payment = PaymentRecorded.model_validate(event.payload)
        settled, paid, voucher = payment.settled, payment.paid_total, payment.voucher_number
    if not settled:
        return
    state = await _load_known(conn, event)
    await _commit(deps, conn, state, domain.on_settled(state, paid, voucher), _follow(event))
