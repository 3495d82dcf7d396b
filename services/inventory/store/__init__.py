"""Inventory's database: tables (``tables``), stock writes (``stock``) and per-order rows (``orders``)."""

from services.inventory.store.orders import (
    OrderRecord,
    OrderState,
    claim_request,
    create_order,
    demands_from_json,
    demands_json,
    holdings,
    holdings_and_waiting,
    load_order,
    order_state,
    put_waiting,
    queue,
    remove_waiting,
    update_order,
    waiting_of,
    waiting_skus,
)
from services.inventory.store.stock import (
    Entry,
    apply_movements,
    balance,
    ensure_warehouse,
    list_warehouses,
    lock_available,
    lock_skus,
    low_flags,
    low_stock_state,
    set_low_flag,
    set_warehouse_priority,
    sku_lock_key,
    total_available,
)
from services.inventory.store.tables import (
    ORDER_STATUSES,
    backorders,
    create_schema,
    inventory_orders,
    low_stock,
    metadata,
    order_holdings,
    order_requests,
    stock_balances,
    stock_ledger,
    warehouses,
)

__all__ = [
    "ORDER_STATUSES", "Entry", "OrderRecord", "OrderState", "apply_movements", "backorders", "balance",
    "claim_request", "create_order", "create_schema", "demands_from_json", "demands_json",
    "ensure_warehouse", "holdings", "holdings_and_waiting", "inventory_orders", "list_warehouses",
    "load_order", "lock_available", "lock_skus", "low_flags", "low_stock", "low_stock_state",
    "metadata", "order_holdings", "order_requests", "order_state", "put_waiting", "queue",
    "remove_waiting", "set_low_flag", "set_warehouse_priority", "sku_lock_key", "stock_balances",
    "stock_ledger", "total_available", "update_order", "waiting_of", "waiting_skus", "warehouses",
]
