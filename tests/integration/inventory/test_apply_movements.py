"""apply_movements moves balances and holdings set-wise, exactly as applying the movements one by
one would: the same arithmetic, the same checks after each movement, no zero holding left."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import exc, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import store
from services.inventory.domain import Movement, balances_from_ledger, holdings_from_ledger
from tests.integration.inventory.conftest import START

O1, O2 = "O-0000000000000001", "O-0000000000000002"


def entry() -> store.Entry:
    return store.Entry(event_id=uuid.uuid4(), recorded_at=START, reason="test")


async def state(engine: AsyncEngine) -> tuple[dict, dict, list]:
    async with engine.connect() as conn:
        balances = {(r.sku, r.warehouse): (r.on_hand, r.reserved)
                    for r in await conn.execute(select(store.stock_balances))}
        holdings = {(r.order_id, r.sku, r.warehouse): r.quantity
                    for r in await conn.execute(select(store.order_holdings))}
        ledger = [Movement(r.sku, r.warehouse, r.kind, r.quantity, r.order_id) for r in
                  await conn.execute(select(store.stock_ledger).order_by(store.stock_ledger.c.entry_id))]
    return balances, holdings, ledger


async def test_a_key_moved_several_times_in_one_set(inventory_engine: AsyncEngine) -> None:
    first = [Movement("X-100", "WH-A", "received", 5), Movement("X-100", "WH-B", "received", 2),
             Movement("X-100", "WH-A", "reserved", 3, O1), Movement("X-100", "WH-B", "reserved", 2, O2),
             Movement("X-100", "WH-A", "released", 1, O1)]
    second = [Movement("X-100", "WH-A", "deducted", 2, O1), Movement("X-100", "WH-B", "released", 2, O2),
              Movement("X-100", "WH-A", "received", 4), Movement("X-100", "WH-A", "reserved", 1, O2)]
    async with inventory_engine.begin() as conn:
        for wh in ("WH-A", "WH-B"):
            await store.ensure_warehouse(conn, wh, START)
        await store.apply_movements(conn, first, entry())
    balances, holdings, ledger = await state(inventory_engine)
    assert balances == {("X-100", "WH-A"): (5, 2), ("X-100", "WH-B"): (2, 2)}
    assert holdings == {(O1, "X-100", "WH-A"): 2, (O2, "X-100", "WH-B"): 2}
    async with inventory_engine.begin() as conn:
        await store.apply_movements(conn, second, entry())
    balances, holdings, ledger = await state(inventory_engine)
    assert ledger == first + second
    assert balances == {key: (b.on_hand, b.reserved) for key, b in balances_from_ledger(ledger).items()}
    assert balances == {("X-100", "WH-A"): (7, 1), ("X-100", "WH-B"): (2, 0)}
    assert holdings == {(O2, "X-100", "WH-A"): 1}  # zeros are gone
    assert holdings == {k: q for k, q in holdings_from_ledger(ledger).items() if q}


@pytest.mark.parametrize("movements", [
    # reserved before it is on hand: fails after the first movement, though the set nets to 0
    [Movement("X-100", "WH-A", "reserved", 2, O1), Movement("X-100", "WH-A", "received", 2)],
    # an existing row: the second movement oversells, the third would make it whole again
    [Movement("X-100", "WH-A", "received", 1), Movement("X-100", "WH-A", "reserved", 4, O1),
     Movement("X-100", "WH-A", "received", 3)],
])
async def test_each_movement_must_pass_the_checks(inventory_engine: AsyncEngine,
                                                  movements: list[Movement]) -> None:
    async with inventory_engine.begin() as conn:
        await store.ensure_warehouse(conn, "WH-A", START)
        await store.apply_movements(conn, [Movement("X-100", "WH-A", "received", 1)], entry())
    before = await state(inventory_engine)
    with pytest.raises(exc.IntegrityError, match="stock_balances_not_oversold"):
        async with inventory_engine.begin() as conn:
            await store.apply_movements(conn, movements, entry())
    assert await state(inventory_engine) == before
