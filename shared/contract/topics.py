"""Topic names from CONTRACT.md and which service produces which."""

from __future__ import annotations

STOREFRONT_ORDERS = "storefront.orders.v1"
ORDER_EVENTS = "oms.order.events.v1"
ORDER_REJECTIONS = "oms.order.rejections.v1"
INVENTORY_EVENTS = "oms.inventory.events.v1"
BILLING_EVENTS = "oms.billing.events.v1"
NOTIFY_EVENTS = "oms.notify.events.v1"
RECONCILE_EVENTS = "oms.reconcile.events.v1"

MAIN_TOPICS: tuple[str, ...] = (
    STOREFRONT_ORDERS,
    ORDER_EVENTS,
    ORDER_REJECTIONS,
    INVENTORY_EVENTS,
    BILLING_EVENTS,
    NOTIFY_EVENTS,
    RECONCILE_EVENTS,
)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def consumer_group(service: str) -> str:
    """The Kafka consumer group of a service (all its instances are in it)."""
    return f"oms-{service}"


ALL_TOPICS: tuple[str, ...] = MAIN_TOPICS + tuple(dlq(t) for t in MAIN_TOPICS)

SERVICE_TOPIC: dict[str, str] = {
    "order": ORDER_EVENTS,
    "inventory": INVENTORY_EVENTS,
    "billing": BILLING_EVENTS,
    "notify": NOTIFY_EVENTS,
    "reconcile": RECONCILE_EVENTS,
}


# The topics each service's consumer subscribes to (its app's wiring is this): what
# ``oms status`` counts a consumer group's backlog on.
CONSUMED: dict[str, tuple[str, ...]] = {
    "order": (STOREFRONT_ORDERS, INVENTORY_EVENTS, BILLING_EVENTS),
    "inventory": (ORDER_EVENTS,),
    "billing": (ORDER_EVENTS, RECONCILE_EVENTS),  # bank lines reconcile matched to invoices
    "notify": (ORDER_EVENTS, BILLING_EVENTS, INVENTORY_EVENTS, RECONCILE_EVENTS),
    "reconcile": (ORDER_EVENTS, INVENTORY_EVENTS, BILLING_EVENTS, NOTIFY_EVENTS),
}


def topic_for_event(service: str, event_type: str) -> str:
    """The topic a service's event goes to: its own topic, rejections on their own."""
    if event_type == "submission.rejected":
        return ORDER_REJECTIONS
    return SERVICE_TOPIC[service]
