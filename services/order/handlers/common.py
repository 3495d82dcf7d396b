"""What every order handler shares: dependencies, appending decided events, readiness facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import duplicate_store, store
from services.order.domain import approval as rules
from services.order.domain.catalog import CatalogRef
from services.order.domain.lifecycle import Readiness, confirm_if_ready
from services.order.domain.state import OrderState, evolve
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import Payload
from shared.eventstore import Meta, append
from shared.streamlocks import lock_streams


@dataclass
class OrderDeps:
    catalog: CatalogRef
    clock: Clock
    rules: rules.RuleSet = field(default_factory=rules.RuleSet.empty)
    duplicate_window: timedelta = timedelta(minutes=30)
    return_window: timedelta = timedelta(days=7)


async def commit(deps: OrderDeps, conn: AsyncConnection, state: OrderState,
                 new_events: Sequence[Payload], meta: Meta) -> OrderState:
    """Append the decided events (optimistic on the version we decided from) and project them."""
    if not new_events:
        return state
    batch = store.BATCH.get()
    head = (0, None) if state.version == 0 else state.head
    if batch is not None and head is not None and head[0] == state.version:
        # A batch keeps its orders' states current: their events go out with the batch's end.
        envelopes = batch.events.add(state.order_id, new_events, meta=meta, key=state.order_id,
                                     now=deps.clock.now(), head=head)
    else:
        envelopes = await append(conn, state.order_id, state.version, new_events, meta=meta,
                                 clock=deps.clock, key=state.order_id, head=state.head)
    delivered_at = None
    for env in envelopes:
        state = evolve(state, env.event_type, env.payload, env.stream_version, env.occurred_at)
        if env.event_type == "order.delivered":
            delivered_at = env.occurred_at
    state = replace(state, head=envelopes.head)
    if any(e.event_type == "order.cancelled" for e in new_events):
        await store.leave_group(conn, state.order_id)
        await duplicate_store.forget(conn, state.order_id)
    store.remember(state)
    await store.save_projection(conn, state, deps.clock.now(), delivered_at)
    return state


def follow(event: EventEnvelope) -> Meta:
    """Meta for events caused by another service's event."""
    return Meta(correlation_id=event.correlation_id, actor=SYSTEM, causation_id=str(event.event_id))


async def readiness(conn: AsyncConnection, deps: OrderDeps, state: OrderState,
                    reserved: bool | None = None) -> Readiness:
    """``reserved``: when the caller has just recorded it (else it is read)."""
    if reserved is None:
        reserved = await store.is_reserved(conn, state.order_id)
    group = (state.placed.group_buy or {}) if state.placed else {}
    if not group:
        return Readiness(reserved=reserved)
    closed, _ = await store.group_state(conn, str(group["group_id"]), deps.clock.now())
    return Readiness(reserved=reserved, group_closed=closed)


async def confirm_group_members(deps: OrderDeps, conn: AsyncConnection, group_id: str,
                                meta: Meta) -> None:
    """When a group closes, every member that is otherwise ready is confirmed."""
    closed, members = await store.group_state(conn, group_id, deps.clock.now())
    if not closed:
        return
    # The members are other orders: take their locks (as a person's command would) before
    # reading them, or a command deciding on a member meanwhile is a write skew.
    await lock_streams(conn, sorted(members))
    for order_id in members:
        member = await store.load_order(conn, order_id)
        ready = Readiness(reserved=await store.is_reserved(conn, order_id), group_closed=True)
        await commit(deps, conn, member, confirm_if_ready(member, ready), meta)


def plan_for(deps: OrderDeps, state: OrderState, *, kind: rules.Kind = "order",
             subtotal: Decimal | None = None, total: Decimal | None = None) -> rules.ApprovalPlan | None:
    placed = state.placed
    assert placed is not None
    facts = rules.ApprovalFacts.of_order(placed, kind)
    if subtotal is not None and total is not None:
        facts = rules.ApprovalFacts(kind=kind, total=total, currency=facts.currency,
                                    subtotal=subtotal, discount_total=facts.discount_total,
                                    customer_tier=facts.customer_tier, order_type=facts.order_type,
                                    channel=facts.channel, payment_terms=facts.payment_terms)
    return rules.evaluate(deps.rules, facts)
