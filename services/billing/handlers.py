"""Billing's application layer: keep order facts, issue invoices, record payments."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import domain, store
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import OrderConfirmed, OrderPaymentCaptured, OrderPlaced
from shared.eventstore import Meta, append
from shared.inbox import Incoming


def _meta(cause: EventEnvelope) -> Meta:
    return Meta(correlation_id=cause.correlation_id, causation_id=str(cause.event_id),
                actor=SYSTEM)


async def handle_order_event(conn: AsyncConnection, message: Incoming, *, clock: Clock) -> None:
    """Consumer entry point for ``oms.order.events.v1`` (inside the inbox's transaction)."""
    event = message.event
    if event.event_type == OrderPlaced.event_type:
        await keep_order(conn, event, OrderPlaced.model_validate(event.payload), clock=clock)
    elif event.event_type == OrderConfirmed.event_type:
        await invoice_order(conn, event, OrderConfirmed.model_validate(event.payload).order_id,
                            clock=clock)
    elif event.event_type == OrderPaymentCaptured.event_type:
        await record_payment(conn, event, OrderPaymentCaptured.model_validate(event.payload),
                             clock=clock)


async def keep_order(conn: AsyncConnection, event: EventEnvelope, order: OrderPlaced, *,
                     clock: Clock) -> None:
    """Remember what billing needs of a placed order (the first order.placed wins)."""
    account = await store.lock_order(conn, order.order_id)
    if account.placed is not None:
        return
    await store.keep_order_facts(conn, order, event.event_id)
    if account.confirmed_event_id is not None:  # confirmed before its facts arrived
        await _issue(conn, event, order, clock=clock)


async def invoice_order(conn: AsyncConnection, event: EventEnvelope, order_id: str, *,
                        clock: Clock) -> None:
    """Issue the order's one invoice on its confirmation."""
    account = await store.lock_order(conn, order_id)
    if await store.invoice_of(conn, order_id) is not None:
        return
    if account.placed is None:
        await store.remember_confirmation(conn, order_id, event.event_id)
        return
    await _issue(conn, event, account.placed, clock=clock)


async def _issue(conn: AsyncConnection, cause: EventEnvelope, order: OrderPlaced, *,
                 clock: Clock) -> None:
    draft = domain.draft_invoice(order)  # before the voucher: a refusal must not use a number
    issued_at = clock.now()
    number = await store.next_voucher_number(conn, domain.INVOICE_SERIES, issued_at.year)
    issued = domain.issue_invoice(
        order, draft, invoice_id=str(uuid.uuid4()),
        voucher=domain.voucher_number(issued_at.year, number),
        paid_total=await store.paid_total(conn, order.order_id), issued_at=issued_at,
    )
    [appended] = await append(conn, order.order_id, None, [issued], meta=_meta(cause),
                              clock=clock, key=order.order_id)
    await store.insert_invoice(conn, issued, series=domain.INVOICE_SERIES, year=issued_at.year,
                               number=number, event_id=appended.event_id,
                               cause_event_id=cause.event_id)


async def record_payment(conn: AsyncConnection, event: EventEnvelope,
                         payment: OrderPaymentCaptured, *, clock: Clock) -> None:
    """Book a captured payment once per payment id, measured against the invoice if any."""
    account = await store.lock_order(conn, payment.order_id)
    if await store.payment_known(conn, payment.payment_id):
        return
    recorded = domain.record_payment(
        payment, paid_before=await store.paid_total(conn, payment.order_id),
        invoice=await store.invoice_of(conn, payment.order_id), order_currency=account.currency,
    )
    [appended] = await append(conn, payment.order_id, None, [recorded], meta=_meta(event),
                              clock=clock, key=payment.order_id)
    await store.insert_payment(conn, recorded, kind=payment.kind, captured_at=payment.captured_at,
                               recorded_at=clock.now(), event_id=appended.event_id,
                               cause_event_id=event.event_id)
