"""Storefront messages: submissions, payments, amendment, cancellation and return requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import duplicate_store, store
from services.order.domain import duplicates, fulfilment, lifecycle
from services.order.domain.state import OrderState
from services.order.domain.validation import (
    envelope_reasons,
    reason,
    validate_amendment,
    validate_cancellation,
    validate_payment,
    validate_return,
    validate_submission,
)
from services.order.handlers.common import (
    OrderDeps,
    commit,
    confirm_group_members,
    plan_for,
    readiness,
)
from shared.contract.envelope import Actor
from shared.contract.payloads import RejectionReason, SubmissionRejected
from shared.contract.storefront import storefront_key
from shared.db import json_loads  # what json.loads reads, faster
from shared.eventstore import Meta, append
from shared.inbox import Incoming
from shared.logging import get_logger

log = get_logger(__name__)
MAX_STORED_MESSAGE = 64 * 1024


async def handle_storefront(deps: OrderDeps, conn: AsyncConnection, message: Incoming) -> None:
    try:
        raw: Any = json_loads(message.value)
    except (ValueError, UnicodeDecodeError) as error:
        await reject(deps, conn, message, None, [reason("$", "invalid_json", f"not valid JSON: {error}")])
        return
    problems = envelope_reasons(raw, len(message.value))
    if problems:
        await reject(deps, conn, message, raw, problems)
        return
    handler = _BY_TYPE[raw["type"]]
    await handler(deps, conn, message, raw)


async def reject(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: Any,
                 reasons: list[RejectionReason]) -> None:
    """Every refusal is a stored, published fact (``submission.rejected``), never only a log line."""
    raw = storable(raw)
    fields = raw if isinstance(raw, dict) else {}
    channel = fields.get("channel") if isinstance(fields.get("channel"), str) else None
    channel_order_id = (fields.get("channel_order_id")
                        if isinstance(fields.get("channel_order_id"), str) else None)
    stored: Any = raw
    if raw is None or len(message.value) > MAX_STORED_MESSAGE:
        stored = storable(message.value[:MAX_STORED_MESSAGE].decode("utf-8", errors="replace"))
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


def storable(value: Any) -> Any:
    """The refused message as it can be stored: NUL and non-Unicode characters become U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _meta(message: Incoming, channel: str, order_id: str) -> Meta:
    return Meta(correlation_id=order_id, actor=Actor(kind="storefront", id=channel),
                causation_id=str(message.message_id))


async def _existing(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any],
                    channel: str, channel_order_id: str) -> OrderState | None:
    state = await store.load_order(conn, lifecycle.order_id_for(channel, channel_order_id))
    if state.exists:
        return state
    await reject(deps, conn, message, raw, [reason(
        "channel_order_id", "unknown_order", f"no {channel} order {channel_order_id!r} was submitted")])
    return None


async def _order_for(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any],
                     result: Any) -> OrderState | None:
    """The order a validated request is about; refusals (invalid, unknown order) are recorded."""
    if isinstance(result, list):
        await reject(deps, conn, message, raw, result)
        return None
    return await _existing(deps, conn, message, raw, result.channel, result.channel_order_id)


async def _refuse(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any],
                  error: Exception) -> None:
    if isinstance(error, lifecycle.IllegalTransition):
        problem = reason("type", "illegal_transition", str(error))
    elif isinstance(error, lifecycle.InvalidCommand):
        problem = reason(error.field, error.code, str(error).split(": ", 1)[-1])
    else:
        raise error
    await reject(deps, conn, message, raw, [problem])


async def submit(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]) -> None:
    now = deps.clock.now()
    result = validate_submission(raw, catalog=deps.catalog.current, now=now)
    if isinstance(result, list):
        await reject(deps, conn, message, raw, result)
        return
    sub = result.message
    order_id = lifecycle.order_id_for(sub.channel, sub.channel_order_id)
    state = await store.load_order(conn, order_id)
    digest = lifecycle.content_hash(raw)
    if state.exists:
        if state.content_hash != digest:
            await reject(deps, conn, message, raw, [reason(
                "channel_order_id", "conflicting_duplicate",
                f"{sub.channel} order {sub.channel_order_id!r} was already submitted with different "
                f"content (order {order_id}); send order.amendment_requested to change it")])
        return  # the same submission again: no second effect
    flags: list[str] = []
    mark = duplicates.fingerprint(sub.customer.phone, result.lines)
    if mark is not None:
        for twin in await duplicate_store.find_likely_duplicates(
                conn, mark, sub.submitted_at, deps.duplicate_window, order_id):
            flags.append(twin.flag)
        await duplicate_store.record(conn, order_id, mark, sub.channel, sub.channel_order_id,
                                     sub.submitted_at)
    placed = lifecycle.placed_from(order_id, sub, result.lines, result.subtotal,
                                   result.discount_total, result.total, digest, flags)
    fresh = OrderState(order_id)
    probe = lifecycle._then(fresh, [placed])
    if sub.group_buy is not None:
        await store.join_group(conn, sub.group_buy.group_id, sub.group_buy.size, order_id, now)
    ready = await readiness(conn, deps, probe)
    meta = _meta(message, sub.channel, order_id)
    state = await commit(deps, conn, fresh,
                         lifecycle.place(fresh, placed, plan_for(deps, probe), now, ready), meta)
    if sub.group_buy is not None:
        await confirm_group_members(deps, conn, sub.group_buy.group_id, meta)


async def capture(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]) -> None:
    result = validate_payment(raw, now=deps.clock.now())
    state = await _order_for(deps, conn, message, raw, result)
    if state is None or isinstance(result, list):
        return
    if result.currency and result.currency != state.currency:
        await reject(deps, conn, message, raw, [reason(
            "currency", "currency_mismatch", f"the order is in {state.currency}, not {result.currency}")])
        return
    await commit(deps, conn, state, lifecycle.capture_payment(state, result, state.currency),
                 _meta(message, result.channel, state.order_id))


async def amendment(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]
                    ) -> None:
    channel, channel_order_id = raw.get("channel"), raw.get("channel_order_id")
    known = None
    if isinstance(channel, str) and isinstance(channel_order_id, str):
        known = await store.load_order(conn, lifecycle.order_id_for(channel, channel_order_id))
    result = validate_amendment(raw, catalog=deps.catalog.current, now=deps.clock.now(),
                                order_type=known.order_type if known and known.exists else None)
    if isinstance(result, list):
        await reject(deps, conn, message, raw, result)
        return
    request = result.message
    state = await _existing(deps, conn, message, raw, request.channel, request.channel_order_id)
    if state is None:
        return
    address = request.shipping_address.model_dump(mode="json", exclude_none=True) \
        if request.shipping_address else None
    await amend_order(deps, conn, state, request_id=request.request_id, lines=result.lines,
                      shipping_address=address, meta=_meta(message, request.channel, state.order_id))


async def amend_order(deps: OrderDeps, conn: AsyncConnection, state: OrderState, *, request_id: str,
                      lines: Any, shipping_address: dict[str, Any] | None, meta: Meta) -> OrderState:
    """Shared by the storefront request and the HTTP command: the approval plan follows the rules."""
    plan = None
    if state.confirmed and lines is not None:
        subtotal = sum((x.unit_price * x.quantity for x in lines), Decimal(0))
        placed = state.placed
        assert placed is not None
        plan = plan_for(deps, state, kind="amendment", subtotal=subtotal,
                        total=subtotal - placed.discount_total + placed.shipping_fee)
    elif state.confirmed:
        plan = plan_for(deps, state, kind="amendment")
    decided = lifecycle.amend(state, request_id=request_id, lines=lines,
                              shipping_address=shipping_address, plan=plan, now=deps.clock.now())
    state = await commit(deps, conn, state, decided, meta)
    if any(e.event_type == "order.amended" for e in decided) and state.placed is not None:
        mark = duplicates.fingerprint(state.placed.customer.get("phone"), state.lines)
        if mark is not None:  # duplicates are judged on what the order is now
            await duplicate_store.record(conn, state.order_id, mark, state.channel,
                                         state.placed.channel_order_id, state.placed.submitted_at)
    return state


async def cancellation(deps: OrderDeps, conn: AsyncConnection, message: Incoming, raw: dict[str, Any]
                       ) -> None:
    result = validate_cancellation(raw, now=deps.clock.now())
    state = await _order_for(deps, conn, message, raw, result)
    if state is None or isinstance(result, list):
        return
    try:
        decided = fulfilment.cancel(state, reason=result.reason, by=f"storefront:{result.channel}",
                                    request_id=result.request_id)
    except lifecycle.IllegalTransition as error:
        await _refuse(deps, conn, message, raw, error)
        return
    await commit(deps, conn, state, decided, _meta(message, result.channel, state.order_id))


async def return_request(deps: OrderDeps, conn: AsyncConnection, message: Incoming,
                         raw: dict[str, Any]) -> None:
    result = validate_return(raw, catalog=deps.catalog.current, now=deps.clock.now())
    state = await _order_for(deps, conn, message, raw, result)
    if state is None or isinstance(result, list):
        return
    lines = [(x.sku, x.quantity) for x in result.lines]  # canonical SKUs from validation
    try:
        decided = fulfilment.request_return(state, request_id=result.request_id, lines=lines,
                                            reason=result.reason)
    except (lifecycle.IllegalTransition, lifecycle.InvalidCommand) as error:
        await _refuse(deps, conn, message, raw, error)
        return
    await commit(deps, conn, state, decided, _meta(message, result.channel, state.order_id))


_BY_TYPE = {
    "order.submitted": submit,
    "payment.captured": capture,
    "order.amendment_requested": amendment,
    "order.cancellation_requested": cancellation,
    "return.requested": return_request,
}
