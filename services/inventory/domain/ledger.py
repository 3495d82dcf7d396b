"""The stock ledger's arithmetic: what each kind of movement does to on hand, reserved and holdings.

Balances and each order's holdings are never written any other way than by applying movements,
so both can be recomputed from the ledger alone (``balances_from_ledger``, ``holdings_from_ledger``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.inventory.domain.reservation import StockKey

MovementKind = Literal["received", "reserved", "released", "deducted", "adjusted", "returned"]
LEDGER_KINDS: tuple[MovementKind, ...] = (
    "received", "reserved", "released", "deducted", "adjusted", "returned")

# kind -> (change of on hand, change of reserved) per unit of the movement's quantity.
EFFECTS: dict[MovementKind, tuple[int, int]] = {
    "received": (1, 0),
    "returned": (1, 0),
    "adjusted": (1, 0),  # signed quantity: negative is a loss
    "reserved": (0, 1),
    "released": (0, -1),
    "deducted": (-1, -1),  # the units leave the warehouse and the order's reservation
}
# kind -> change of the order's holding per unit (movements that belong to an order).
HOLDING_EFFECTS: dict[MovementKind, int] = {"reserved": 1, "released": -1, "deducted": -1}

HoldingKey = tuple[str, str, str]
"""(order_id, sku, warehouse)."""


@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger line: units of a SKU in a warehouse, of one kind, maybe for an order."""

    sku: str
    warehouse: str
    kind: MovementKind
    quantity: int
    order_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EFFECTS:
            raise ValueError(f"unknown ledger kind {self.kind!r}")
        if self.quantity == 0 or (self.quantity < 0 and self.kind != "adjusted"):
            raise ValueError(f"{self.kind} of {self.quantity} x {self.sku}: quantity must be above 0"
                             " (only adjustments may be negative)")
        if self.kind in HOLDING_EFFECTS and self.order_id is None:
            raise ValueError(f"a {self.kind} movement belongs to an order")

    @property
    def on_hand_change(self) -> int:
        return EFFECTS[self.kind][0] * self.quantity

    @property
    def reserved_change(self) -> int:
        return EFFECTS[self.kind][1] * self.quantity

    @property
    def holding_change(self) -> int:
        return HOLDING_EFFECTS.get(self.kind, 0) * self.quantity


@dataclass(frozen=True, slots=True)
class Balance:
    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def after(self, movement: Movement) -> Balance:
        return Balance(self.on_hand + movement.on_hand_change,
                       self.reserved + movement.reserved_change)


def balances_from_ledger(movements: Iterable[Movement]) -> dict[StockKey, Balance]:
    """Every (sku, warehouse) balance the ledger implies, replayed from nothing."""
    balances: dict[StockKey, Balance] = {}
    for m in movements:
        key = (m.sku, m.warehouse)
        balances[key] = balances.get(key, Balance()).after(m)
    return balances


def holdings_from_ledger(movements: Iterable[Movement]) -> dict[HoldingKey, int]:
    """Units each order still holds per (sku, warehouse): reserved - released - deducted (non-zero)."""
    holdings: dict[HoldingKey, int] = {}
    for m in movements:
        if m.order_id is not None and m.holding_change:
            key = (m.order_id, m.sku, m.warehouse)
            holdings[key] = holdings.get(key, 0) + m.holding_change
    return {key: qty for key, qty in holdings.items() if qty != 0}


def oversold(balance: Balance) -> str | None:
    """Why a balance is impossible, or None: the ledger must never imply one of these."""
    if balance.reserved < 0:
        return f"reserved {balance.reserved} is negative"
    if balance.reserved > balance.on_hand:
        return f"reserved {balance.reserved} exceeds on hand {balance.on_hand}"
    return None
