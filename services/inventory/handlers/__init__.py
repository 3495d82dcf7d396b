"""Inventory's application layer: order events and people's commands in, ledger moves and events out."""

from services.inventory.handlers.orders import UnknownOrder, handle_order_event
from services.inventory.handlers.session import LedgerSession, Thresholds, level_stream, stock_stream
from services.inventory.handlers.stock import (
    Adjustment,
    AdjustmentRefused,
    Receipt,
    adjust_stock,
    check_ledger,
    receive_stock,
    set_warehouse_priority,
)

__all__ = [
    "Adjustment", "AdjustmentRefused", "LedgerSession", "Receipt", "Thresholds", "UnknownOrder",
    "adjust_stock", "check_ledger", "handle_order_event", "level_stream", "receive_stock",
    "set_warehouse_priority", "stock_stream",
]
