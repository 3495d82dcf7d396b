"""Inventory service wiring: its database schema, the order-events consumer and the HTTP API.

``oms replay inventory`` (shared/audit/replay.py) re-runs inventory's own commands through the
hooks below: receipts, adjustments and priority changes from their ``stock.received`` /
``stock.adjusted`` / ``warehouse.priority_set`` events (no causation id), plus adjustments
recorded before ``stock.adjusted`` existed, which are only ``adjusted`` ledger lines (no such
event has their id). The live warehouses are copied first, each with the priority it had before
its first ``warehouse.priority_set`` (priorities set before that event existed have no history:
they count from the start).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import api, handlers, store
from services.inventory.catalog import CatalogThresholds, load_thresholds
from services.inventory.handlers.batch import make_batch_start
from services.inventory.handlers.orders import HANDLERS
from shared.audit.replay import ReplayCommand, ReplayHooks
from shared.audit.sources import Record, has_table
from shared.clock import Clock, ManualClock
from shared.contract.envelope import SYSTEM, Actor, EventEnvelope
from shared.contract.topics import CONSUMED
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

log = get_logger(__name__)


def build(ctx: ServiceContext) -> ServiceParts:
    # Followed while running: a catalog file edited and loaded (`oms catalog load`) takes effect
    # within a few seconds, without a restart.
    thresholds = CatalogThresholds(ctx.settings.catalog_file, ctx.clock)
    ctx.state["thresholds"] = thresholds
    log.info("low-stock thresholds loaded", skus=len(thresholds),
             file=str(ctx.settings.catalog_file or "demo catalog"))
    return ServiceParts(topics=CONSUMED["inventory"],
                        handle=partial(handlers.handle_order_event, clock=ctx.clock,
                                       thresholds=thresholds),
                        start_batch=make_batch_start(ctx.clock, thresholds),
                        handles=frozenset(HANDLERS))


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app("inventory", schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)


# ---- oms replay inventory ----------------------------------------------------------------------

ADJUSTMENT = "ledger:adjusted"  # not an event type: an adjustment from before stock.adjusted


def _thresholds(thresholds: handlers.Thresholds | None) -> handlers.Thresholds:
    return thresholds if thresholds is not None else load_thresholds(OmsSettings().catalog_file)


async def replay_receipt(engine: AsyncEngine, event: EventEnvelope, clock: ManualClock, *,
                         thresholds: handlers.Thresholds | None = None) -> None:
    """A receipt (``POST /stock/receipts``, ``oms stock receive``) again, from its stock.received."""
    p = event.payload
    await handlers.receive_stock(
        engine, handlers.Receipt(p["sku"], p["warehouse"], int(p["quantity"]), p.get("reason")),
        actor=event.actor, correlation_id=event.correlation_id, clock=clock,
        thresholds=_thresholds(thresholds))


async def replay_adjustment(engine: AsyncEngine, event: EventEnvelope, clock: ManualClock, *,
                            thresholds: handlers.Thresholds | None = None) -> None:
    """An adjustment (``POST /stock/adjustments``, ``oms stock adjust``) again, from its
    stock.adjusted or (recorded before that event existed) its ledger line.

    The rebuilt ledger line keeps the live id (the event's, or the old line's): after a swap the
    live log is the log, so a later replay still tells old adjustments from new ones by it.
    """
    p = event.payload
    await handlers.adjust_stock(
        engine, handlers.Adjustment(p["sku"], p["warehouse"], int(p["quantity"]), p["reason"]),
        actor=event.actor, correlation_id=event.correlation_id, clock=clock,
        thresholds=_thresholds(thresholds), adjustment_id=event.event_id)


async def replay_priority(engine: AsyncEngine, event: EventEnvelope, clock: ManualClock, *,
                          thresholds: handlers.Thresholds | None = None) -> None:
    """A priority change (``PUT /warehouses/{code}/priority``) again, at its time."""
    p = event.payload
    await handlers.set_warehouse_priority(engine, p["warehouse"], int(p["priority"]),
                                          clock=clock, actor=event.actor,
                                          correlation_id=event.correlation_id)


_COMMANDS = {"stock.received": replay_receipt, "stock.adjusted": replay_adjustment,
             "warehouse.priority_set": replay_priority, ADJUSTMENT: replay_adjustment}
REPLAY_COMMANDS: dict[str, ReplayCommand] = dict(_COMMANDS)

_ACTOR = re.compile(r"^(?P<kind>storefront|user|system):(?P<id>.*?)(?: \((?P<role>[^()]*)\))?$")

# Adjustments recorded before stock.adjusted existed (a ledger line whose id no stock.adjusted
# has), in time order, each with its transaction's xid8 (from the row's 32-bit xmin and the
# current epoch) so that they sort among events of the same instant as they were committed.
_OLD_ADJUSTMENTS = text(
    "SELECT l.event_id, l.sku, l.warehouse, l.quantity, l.reason, l.actor, l.recorded_at, "
    "(((s.nx >> 32) - CASE WHEN l.xmin::text::bigint >= (s.nx & 4294967295) THEN 1 ELSE 0 END)"
    " << 32) + l.xmin::text::bigint AS tx "
    "FROM stock_ledger l, (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS nx) s "
    "WHERE l.kind = 'adjusted' AND NOT EXISTS (SELECT 1 FROM events e "
    "WHERE e.event_id = l.event_id AND e.event_type = 'stock.adjusted') "
    "ORDER BY l.recorded_at, l.entry_id")


def parse_actor(name: str | None) -> Actor:
    """The Actor behind a ledger line's ``actor`` text (``user:alice (warehouse)``)."""
    found = _ACTOR.match(name or "")
    if found is None:
        return SYSTEM
    return Actor(kind=found["kind"], id=found["id"], role=found["role"])


def _adjustment(row: Any) -> Record:
    envelope = EventEnvelope(
        event_id=row.event_id, event_type=ADJUSTMENT, schema_version=1,
        stream_id=handlers.stock_stream(row.sku, row.warehouse), stream_version=1,
        occurred_at=row.recorded_at, correlation_id=f"adjustment:{row.event_id}",
        actor=parse_actor(row.actor),
        payload={"sku": row.sku, "warehouse": row.warehouse, "quantity": row.quantity,
                 "reason": row.reason})
    return Record(row.recorded_at, int(row.tx), envelope)


# Each warehouse's first recorded priority change: what it served with before (NULL: no row yet).
_FIRST_PRIORITIES = text(
    "SELECT DISTINCT ON (stream_id) payload->>'warehouse' AS code, payload->'previous' AS previous "
    "FROM events WHERE event_type = 'warehouse.priority_set' ORDER BY stream_id, stream_version")


def _as_first_seen(houses: list[dict[str, Any]], first: dict[str, Any]) -> list[dict[str, Any]]:
    """The live warehouses as they were before their first recorded priority change: a warehouse
    created by that change is left out (the replayed change creates it)."""
    out = []
    for house in houses:
        if house["code"] not in first:
            out.append(house)
        elif first[house["code"]] is not None:
            out.append({**house, "priority": int(first[house["code"]])})
    return out


async def replay_setup(ctx: ServiceContext, live: AsyncEngine, hooks: ReplayHooks) -> ReplayHooks:
    """Copy the live warehouses (with the priorities they had before their recorded changes),
    read the old ledger-only adjustments, bind the thresholds, follow live's order."""
    houses: list[dict[str, Any]] = []
    adjustments: list[Record] = []
    async with live.connect() as conn:
        if await has_table(conn, "stock_ledger"):
            first = {r.code: r.previous for r in await conn.execute(_FIRST_PRIORITIES)}
            houses = _as_first_seen(
                [dict(r._mapping) for r in await conn.execute(select(store.warehouses))], first)
            adjustments = [_adjustment(r) for r in await conn.execute(_OLD_ADJUSTMENTS)]
    if houses:
        async with ctx.engine.begin() as conn:
            await conn.execute(insert(store.warehouses).values(houses).on_conflict_do_nothing())
    thresholds = ctx.state.get("thresholds")
    commands = {t: partial(run, thresholds=thresholds) for t, run in _COMMANDS.items()}
    # Which warehouse serves an order depends on which orders came first (the last units go to
    # whoever asks first): fed in the order live handled them (``shared/audit/liveorder.py``).
    return replace(hooks, commands=commands, records=(*hooks.records, *adjustments),
                   follow_live_order=True)


REPLAY_SETUP = replay_setup
