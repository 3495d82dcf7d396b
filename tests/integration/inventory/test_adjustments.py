"""Adjustments on real PostgreSQL: each one is a stock.adjusted event (the audit trail) and its ledger
line in one transaction; orders it serves name it as their cause; a refused one records nothing;
the hash chain stays intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from services.inventory import handlers, views
from services.inventory.handlers import stock_stream
from shared.clock import ManualClock
from shared.contract.topics import INVENTORY_EVENTS, topic_for_event
from shared.eventstore import read_stream
from tests.integration.audit.support import cli, database_env, invoke
from tests.integration.inventory.conftest import CLERK, START, consumer, incoming, placed, receive

AUDIT = cli("shared.cli.audit")
O1 = "O-00000000000000e1"


async def adjust(engine, sku: str, warehouse: str, quantity: int, reason: str):
    return await handlers.adjust_stock(engine, handlers.Adjustment(sku, warehouse, quantity, reason),
                                       actor=CLERK, correlation_id="c-count",
                                       clock=ManualClock(START))


async def test_an_adjustment_appends_stock_adjusted_with_its_ledger_line(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    result = await adjust(inventory_engine, "X-100", "WH-A", -2, "broken in transit")
    async with inventory_engine.connect() as conn:
        [received, adjusted] = await read_stream(conn, stock_stream("X-100", "WH-A"))
        [entry, *_] = await views.ledger(conn, "X-100", 10)
        ledger_event_id = (await conn.execute(text(
            "SELECT event_id FROM stock_ledger WHERE kind = 'adjusted'"))).scalar_one()
    envelope = adjusted.envelope
    assert received.envelope.event_type == "stock.received"
    assert envelope.event_type == "stock.adjusted" and envelope.schema_version == 1
    assert envelope.payload == {"sku": "X-100", "warehouse": "WH-A", "quantity": -2,
                                "on_hand": 3, "reason": "broken in transit"}
    assert envelope.actor == CLERK and envelope.correlation_id == "c-count"
    assert envelope.causation_id is None  # a person's command, re-run as such by `oms replay`
    assert adjusted.key == "X-100"
    assert topic_for_event("inventory", envelope.event_type) == INVENTORY_EVENTS
    assert ledger_event_id == envelope.event_id
    assert result["adjustment_id"] == result["event_id"] == str(envelope.event_id)
    assert (result["on_hand"], result["reserved"], result["available"]) == (3, 0, 3)
    assert (entry["kind"], entry["quantity"], entry["reason"], entry["actor"]) == (
        "adjusted", -2, "broken in transit", "user:wang.warehouse (warehouse)")


async def test_orders_served_by_a_gain_name_the_adjustment(inventory_engine):
    await consumer(inventory_engine).process_incoming([incoming(placed(O1, [("X-100", 2)]))])
    result = await adjust(inventory_engine, "X-100", "WH-A", 2, "stock count")
    async with inventory_engine.connect() as conn:
        [reserved] = [s.envelope for s in await read_stream(conn, O1)
                      if s.envelope.event_type == "stock.reserved"]
    assert reserved.causation_id == result["adjustment_id"]
    assert reserved.payload["lines"] == [{"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]


async def test_a_refused_adjustment_records_nothing(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await consumer(inventory_engine).process_incoming([incoming(placed(O1, [("X-100", 2)]))])
    with pytest.raises(handlers.AdjustmentRefused):
        await adjust(inventory_engine, "X-100", "WH-A", -1, "broken")
    async with inventory_engine.connect() as conn:
        types = (await conn.execute(text(
            "SELECT count(*) FROM events WHERE event_type = 'stock.adjusted'"))).scalar_one()
        lines = (await conn.execute(text(
            "SELECT count(*) FROM stock_ledger WHERE kind = 'adjusted'"))).scalar_one()
    assert (types, lines) == (0, 0)


async def test_the_audit_trail_stays_intact(inventory_engine, database_url: str, tmp_path: Path):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    for quantity, reason in ((-1, "damaged"), (3, "found in a count"), (-2, "lost")):
        await adjust(inventory_engine, "X-100", "WH-A", quantity, reason)
    result = await invoke(AUDIT, ["audit", "verify", "--service", "inventory", "--json"],
                          database_env(tmp_path, inventory=database_url))
    assert result.exit_code == 0, result.output
    assert '"intact": true' in result.output and '"events": 4' in result.output
    exported = await invoke(AUDIT, ["audit", "export", "--service", "inventory"],
                            database_env(tmp_path, inventory=database_url))
    assert exported.exit_code == 0, exported.output
    assert exported.output.count('"stock.adjusted"') == 3
