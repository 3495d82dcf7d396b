"""Inventory's pure decisions: reservation plans, the ledger's arithmetic, backorders, fulfilment."""

from services.inventory.domain.backorders import (
    Served,
    Waiting,
    plan_behind_queue,
    serve_waiting,
    set_aside,
    wanted_per_sku,
)
from services.inventory.domain.fulfilment import (
    AmendmentSplit,
    Holdings,
    OverShipment,
    Take,
    held_per_sku,
    low_stock_crossing,
    merge_demands,
    per_sku,
    plan_deduction,
    release_everything,
    release_units,
    split_amendment,
)
from services.inventory.domain.ledger import (
    EFFECTS,
    LEDGER_KINDS,
    Balance,
    HoldingKey,
    Movement,
    MovementKind,
    balances_from_ledger,
    holdings_from_ledger,
    oversold,
)
from services.inventory.domain.reservation import (
    BUNDLE_SEARCH_BUDGET,
    DEFAULT_WAREHOUSE_PRIORITY,
    Allocation,
    Demand,
    Reservation,
    Shortage,
    StockKey,
    Warehouse,
    by_priority,
    plan_reservation,
    reserves_at_placement,
    serving_order,
)

__all__ = [
    "BUNDLE_SEARCH_BUDGET", "DEFAULT_WAREHOUSE_PRIORITY", "EFFECTS", "LEDGER_KINDS", "Allocation",
    "AmendmentSplit", "Balance", "Demand", "HoldingKey", "Holdings", "Movement", "MovementKind",
    "OverShipment", "Reservation", "Served", "Shortage", "StockKey", "Take", "Waiting",
    "Warehouse", "balances_from_ledger", "by_priority", "held_per_sku", "holdings_from_ledger",
    "low_stock_crossing", "merge_demands", "oversold", "per_sku", "plan_behind_queue",
    "plan_deduction", "plan_reservation", "release_everything", "release_units",
    "reserves_at_placement", "serve_waiting", "serving_order", "set_aside", "split_amendment",
    "wanted_per_sku",
]
