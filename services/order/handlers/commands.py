"""Commands from people over HTTP: each loads the order, decides and commits in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.order import store
from services.order.domain import fulfilment, lifecycle
from services.order.domain.state import OrderState
from services.order.handlers.common import OrderDeps, commit, readiness
from services.order.handlers.intake import amend_order
from shared.auth import Principal
from shared.contract.payloads import OrderLine, Payload
from shared.eventstore import ConcurrencyError, Meta
from shared.streamlocks import lock_stream

Decide = Callable[[AsyncConnection, OrderState], Awaitable[Sequence[Payload]]]


class UnknownOrder(LookupError):
    pass


def user_meta(order_id: str, who: Principal) -> Meta:
    return Meta(correlation_id=order_id, actor=who.actor(),
                causation_id=f"http:{uuid.uuid4()}")


Work = Callable[[AsyncConnection, OrderState, Meta], Awaitable[OrderState]]


async def run_work(engine: AsyncEngine, order_id: str, who: Principal, work: Work) -> OrderState:
    """Load, act, commit; a concurrent writer makes us reload and act again (never lost)."""
    for attempt in range(5):
        try:
            async with engine.begin() as conn:
                # People's commands on one order queue up here instead of racing each other into
                # optimistic-concurrency retries (the version check still guards the consumer).
                await lock_stream(conn, order_id)
                state = await store.load_order(conn, order_id)
                if not state.exists:
                    raise UnknownOrder(order_id)
                return await work(conn, state, user_meta(order_id, who))
        except ConcurrencyError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


async def run(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, decide: Decide
              ) -> OrderState:
    async def work(conn: AsyncConnection, state: OrderState, meta: Meta) -> OrderState:
        return await commit(deps, conn, state, await decide(conn, state), meta)
    return await run_work(engine, order_id, who, work)


async def approve(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal,
                  comment: str | None) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return lifecycle.approve(state, approver=who.user, role=who.role, comment=comment,
                                 now=deps.clock.now(), readiness=await readiness(conn, deps, state))
    return await run(deps, engine, order_id, who, decide)


async def reject(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, reason: str
                 ) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return lifecycle.reject(state, approver=who.user, role=who.role, reason=reason)
    return await run(deps, engine, order_id, who, decide)


async def ship(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, *,
               shipment_id: str, warehouse: str, carrier: str, tracking_number: str,
               lines: list[tuple[str, int]] | None) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        canonical = [(_sku(deps, sku), q) for sku, q in lines] if lines is not None else None
        ready = await readiness(conn, deps, state)
        return fulfilment.ship(state, shipment_id=shipment_id, warehouse=warehouse, carrier=carrier,
                               tracking_number=tracking_number, lines=canonical, now=deps.clock.now(),
                               stock_reserved=ready.reserved)
    return await run(deps, engine, order_id, who, decide)


async def deliver(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return fulfilment.deliver(state, deps.clock.now())
    return await run(deps, engine, order_id, who, decide)


async def complete(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return fulfilment.complete(state, deps.clock.now(), reason=f"completed by {who.user}")
    return await run(deps, engine, order_id, who, decide)


async def cancel(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, reason: str
                 ) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return fulfilment.cancel(state, reason=reason, by=who.user, request_id=None)
    return await run(deps, engine, order_id, who, decide)


async def receive_return(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, *,
                         request_id: str, warehouse: str) -> OrderState:
    async def decide(conn: AsyncConnection, state: OrderState) -> Sequence[Payload]:
        return fulfilment.receive_return(state, request_id=request_id, warehouse=warehouse,
                                         now=deps.clock.now())
    return await run(deps, engine, order_id, who, decide)


async def amend(deps: OrderDeps, engine: AsyncEngine, order_id: str, who: Principal, *,
                request_id: str, lines: list[OrderLine] | None,
                shipping_address: dict[str, Any] | None) -> OrderState:
    async def work(conn: AsyncConnection, state: OrderState, meta: Meta) -> OrderState:
        return await amend_order(deps, conn, state, request_id=request_id, lines=lines,
                                 shipping_address=shipping_address, meta=meta)
    return await run_work(engine, order_id, who, work)


def _sku(deps: OrderDeps, sku: str) -> str:
    item = deps.catalog.current.resolve(sku).item
    return item.sku if item else sku
