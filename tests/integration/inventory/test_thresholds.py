"""Low-stock thresholds on real PostgreSQL, wired as the running service wires them (``build``): a
threshold changed in the catalog file is used without a restart, by order events and receipts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import cast

from services.inventory import handlers
from services.inventory.app import build
from services.inventory.catalog import RECHECK_EVERY, CatalogThresholds
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from shared.kafka import Publisher
from shared.service import ServiceContext
from shared.settings import OmsSettings
from tests.integration.inventory.conftest import CLERK, START, incoming, placed, stream

HEADER = "sku,name,category,tax_rate,aliases,low_stock_threshold,active\n"


def catalog_with(path: Path, threshold: int) -> Path:
    path.write_text(HEADER + f"X-100,Purifier,appliances,0.13,,{threshold},true\n",
                    encoding="utf-8")
    return path


async def test_a_changed_threshold_is_used_without_a_restart(inventory_engine, database_url,
                                                            tmp_path):
    catalog = catalog_with(tmp_path / "catalog.csv", 5)
    clock = ManualClock(START)
    ctx = ServiceContext("inventory", OmsSettings(catalog_file=catalog), inventory_engine,
                         cast(Publisher, None), clock, database_url)
    parts = build(ctx)
    thresholds = ctx.state["thresholds"]  # what the HTTP commands use
    assert isinstance(thresholds, CatalogThresholds)
    inbox = IdempotentConsumer(name="inventory", engine=inventory_engine, publisher=None,
                               handle=parts.handle)
    await handlers.receive_stock(inventory_engine, handlers.Receipt("X-100", "WH-A", 10),
                                 actor=CLERK, correlation_id="c", clock=clock,
                                 thresholds=thresholds)  # 10 >= 5: armed
    await inbox.process_incoming([incoming(placed("O-00000000000000d1", [("X-100", 2)]))])
    assert await stream(inventory_engine, "stock-level:X-100") == []  # 8 >= 5

    catalog_with(catalog, 9)  # edited, and loaded with `oms catalog load`
    clock.advance(RECHECK_EVERY + timedelta(seconds=1))
    await inbox.process_incoming([incoming(placed("O-00000000000000d2", [("X-100", 1)]))])
    assert await stream(inventory_engine, "stock-level:X-100") == [
        ("stock.low", {"sku": "X-100", "available": 7, "threshold": 9})]

    catalog_with(catalog, 3)
    clock.advance(RECHECK_EVERY + timedelta(seconds=1))
    await handlers.receive_stock(inventory_engine, handlers.Receipt("X-100", "WH-A", 1),
                                 actor=CLERK, correlation_id="c", clock=clock,
                                 thresholds=thresholds)  # 8 >= 3: re-armed at the new threshold
    await handlers.adjust_stock(inventory_engine, handlers.Adjustment("X-100", "WH-A", -6, "lost"),
                                actor=CLERK, correlation_id="c", clock=clock,
                                thresholds=thresholds)
    alerts = await stream(inventory_engine, "stock-level:X-100")
    assert [(p["available"], p["threshold"]) for _, p in alerts] == [(7, 9), (2, 3)]
