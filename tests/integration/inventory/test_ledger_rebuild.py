"""Balances and holdings recomputed from the ledger equal the live ones after a random history."""

from __future__ import annotations

import contextlib
import random

import pytest

from services.inventory import handlers, views
from services.inventory.domain import balances_from_ledger
from shared.clock import ManualClock
from tests.integration.inventory.conftest import (
    CLERK,
    START,
    amended,
    cancelled,
    consumer,
    deposit_paid,
    incoming,
    placed,
    receive,
    reservation,
    returned,
    shipped,
)

SKUS = ("X-100", "Y-200", "GIFT-MUG")
WAREHOUSES = ("WH-A", "WH-B")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_ledger_rebuilds_the_live_balances_after_a_random_history(inventory_engine, seed):
    rng = random.Random(seed)
    inbox = consumer(inventory_engine)
    orders: dict[str, list[tuple[str, int]]] = {}
    shipments = 0
    for step in range(60):
        action = rng.choice(["receive", "receive", "adjust", "place", "place", "amend", "cancel",
                             "ship", "return", "deposit"])
        if action == "receive":
            await receive(inventory_engine, rng.choice(SKUS), rng.choice(WAREHOUSES),
                          rng.randint(1, 6))
        elif action == "adjust":
            with contextlib.suppress(handlers.AdjustmentRefused):
                await handlers.adjust_stock(
                    inventory_engine, handlers.Adjustment(rng.choice(SKUS), rng.choice(WAREHOUSES),
                                                          rng.choice([-2, -1, 1, 3]), "count"),
                    actor=CLERK, correlation_id="c", clock=ManualClock(START))
        elif action == "place":
            order_id = f"O-{seed:04x}{step:012x}"
            lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(SKUS, rng.randint(1, 2))]
            orders[order_id] = lines
            order_type = rng.choice(["standard", "standard", "presale"])
            await inbox.process_incoming([incoming(placed(order_id, lines, order_type))])
        elif orders:
            order_id = rng.choice(sorted(orders))
            found = await reservation(inventory_engine, order_id)
            if action == "amend":
                after = [(sku, max(1, qty + rng.randint(-2, 2))) for sku, qty in orders[order_id]]
                envelope = amended(order_id, f"R-{step}", orders[order_id], after)
                orders[order_id] = after
            elif action == "cancel":
                envelope = cancelled(order_id)
            elif action == "deposit":
                envelope = deposit_paid(order_id)
            elif action == "ship" and found["lines"]:
                held = found["lines"][0]
                shipments += 1
                envelope = shipped(order_id, f"S-{shipments}", rng.choice(WAREHOUSES),
                                   [(held["sku"], held["quantity"])])
            elif action == "return":
                envelope = returned(order_id, f"RT-{step}", rng.choice(WAREHOUSES),
                                    [(rng.choice(SKUS), 1)])
            else:
                continue
            await inbox.process_incoming([incoming(envelope)])

    async with inventory_engine.connect() as conn:
        check = await views.ledger_check(conn)
        live = await views.live_balances(conn)
        rebuilt = balances_from_ledger(await views.ledger_movements(conn))
        holdings = await views.live_holdings(conn)
        dead = (await conn.exec_driver_sql("SELECT count(*) FROM dead_letters")).scalar()
    assert check["consistent"], check
    assert rebuilt == live
    assert check["ledger_entries"] > 20
    for (sku, wh), balance in live.items():
        assert 0 <= balance.reserved <= balance.on_hand
        assert balance.reserved == sum(q for (_, s, w), q in holdings.items() if (s, w) == (sku, wh))
    assert dead == 0
