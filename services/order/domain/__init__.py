"""The order service's pure domain: lifecycle, intake validation, catalog, approval rules."""

from services.order.domain.lifecycle import (  # re-exported names used across the service
    ALLOWED,
    IllegalTransition,
    OrderState,
    capture_payment,
    content_hash,
    evolve,
    fold,
    on_settled,
    on_stock_reserved,
    on_stock_shortage,
    order_id_for,
    place,
    placed_from,
)

__all__ = [
    "ALLOWED", "IllegalTransition", "OrderState", "capture_payment", "content_hash", "evolve",
    "fold", "on_settled", "on_stock_reserved", "on_stock_shortage", "order_id_for", "place",
    "placed_from",
]
