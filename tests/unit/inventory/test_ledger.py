"""The ledger's arithmetic: balances and holdings follow from the movements alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.inventory.domain import (
    Balance,
    Movement,
    balances_from_ledger,
    holdings_from_ledger,
    oversold,
)


def test_each_kind_moves_on_hand_and_reserved_as_documented():
    moves = [
        Movement("X-100", "WH-A", "received", 10),
        Movement("X-100", "WH-A", "reserved", 4, "O-1"),
        Movement("X-100", "WH-A", "released", 1, "O-1"),
        Movement("X-100", "WH-A", "deducted", 2, "O-1"),
        Movement("X-100", "WH-A", "returned", 1, "O-1"),
        Movement("X-100", "WH-A", "adjusted", -3),
    ]
    assert balances_from_ledger(moves) == {("X-100", "WH-A"): Balance(on_hand=6, reserved=1)}
    assert holdings_from_ledger(moves) == {("O-1", "X-100", "WH-A"): 1}
    assert Balance(6, 1).available == 5


def test_fully_released_or_deducted_holdings_disappear():
    moves = [Movement("X-100", "WH-A", "received", 3),
             Movement("X-100", "WH-A", "reserved", 2, "O-1"),
             Movement("X-100", "WH-A", "deducted", 1, "O-1"),
             Movement("X-100", "WH-A", "released", 1, "O-1")]
    assert holdings_from_ledger(moves) == {}


@pytest.mark.parametrize("kind, quantity, order_id", [
    ("received", 0, None), ("received", -1, None), ("adjusted", 0, None),
    ("reserved", 1, None), ("deducted", 1, None), ("lost", 1, None),
])
def test_impossible_movements_are_refused(kind, quantity, order_id):
    with pytest.raises(ValueError):
        Movement("X-100", "WH-A", kind, quantity, order_id)


def test_oversold_names_the_broken_balance():
    assert oversold(Balance(2, 2)) is None
    assert "exceeds" in (oversold(Balance(1, 2)) or "")
    assert "negative" in (oversold(Balance(1, -1)) or "")


@st.composite
def histories(draw):
    """A random but legal history, applied step by step as the service does."""
    skus, codes, orders = ["A-1", "B-2"], ["WH-A", "WH-B"], ["O-1", "O-2", "O-3"]
    live: dict[tuple[str, str], Balance] = {}
    held: dict[tuple[str, str, str], int] = {}
    moves: list[Movement] = []
    for _ in range(draw(st.integers(0, 40))):
        sku, wh, order = draw(st.sampled_from(skus)), draw(st.sampled_from(codes)), draw(
            st.sampled_from(orders))
        b, h = live.get((sku, wh), Balance()), held.get((order, sku, wh), 0)
        options = ["received", "returned", "adjusted"]
        options += ["reserved"] if b.available > 0 else []
        options += ["released", "deducted"] if h > 0 else []
        kind = draw(st.sampled_from(options))
        if kind in ("received", "returned"):
            qty = draw(st.integers(1, 5))
        elif kind == "adjusted":
            qty = draw(st.integers(-b.available, 5).filter(lambda q: q != 0)) if b.available \
                else draw(st.integers(1, 5))
        elif kind == "reserved":
            qty = draw(st.integers(1, b.available))
        else:
            qty = draw(st.integers(1, h))
        m = Movement(sku, wh, kind, qty, order if kind in ("reserved", "released", "deducted")
                     else None)
        moves.append(m)
        live[(sku, wh)] = b.after(m)
        if m.holding_change:
            held[(order, sku, wh)] = h + m.holding_change
    return moves, live, {k: v for k, v in held.items() if v}


@given(histories())
@settings(max_examples=200, deadline=None)
def test_rebuilding_from_the_ledger_gives_the_live_balances_and_never_an_oversold_one(case):
    moves, live, held = case
    assert balances_from_ledger(moves) == live
    assert holdings_from_ledger(moves) == held
    assert all(oversold(b) is None for b in live.values())
    reserved = {}
    for (_, sku, wh), qty in held.items():
        reserved[(sku, wh)] = reserved.get((sku, wh), 0) + qty
    assert {k: b.reserved for k, b in live.items() if b.reserved} == reserved
