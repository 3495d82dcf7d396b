"""What each event a rule may react to offers its templates, and who may see which field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.payloads import parse_payload


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event type rules may name: its own template fields and, for approvals, role fields."""

    event_type: str
    fields: frozenset[str]
    role_fields: frozenset[str] = frozenset()  # payload fields naming a staff role


def _spec(event_type: str, *fields: str, roles: tuple[str, ...] = ()) -> EventSpec:
    return EventSpec(event_type, frozenset(fields), frozenset(roles))


_APPROVAL = ("kind", "rule_id", "rules_version", "level", "levels", "role", "escalate_to", "due_at")
EVENTS: dict[str, EventSpec] = {spec.event_type: spec for spec in (
    _spec("order.confirmed", "total", "currency"),
    _spec("order.paid", "paid_amount", "currency", "voucher_number"),
    _spec("order.backordered", "missing", "missing_lines"),
    _spec("order.shipped", "shipment_id", "warehouse", "carrier", "tracking_number", "lines",
          "complete", "shipped_at"),
    _spec("order.delivered", "delivered_at"),
    _spec("order.cancelled", "reason", "stage"),
    _spec("refund.issued", "refund_id", "credit_note_voucher_number", "method", "amount",
          "currency", "issued_at"),
    _spec("stock.shortage", "missing", "missing_lines"),
    _spec("order.approval_requested", *_APPROVAL, "sla_seconds", "reasons",
          roles=("role", "escalate_to")),
    _spec("order.approval_escalated", *_APPROVAL, "escalated_at", "escalations",
          roles=("role", "escalate_to")),
    _spec("discrepancy.detected", "kind", "expected", "actual", "since"),
)}

# Every template may use these: facts of the order, no personal data.
ORDER_FIELDS = frozenset({"order_id", "channel", "channel_order_id", "event_type", "recipient"})
# Only the customer's own notifications may use these.
CUSTOMER_ONLY_FIELDS = frozenset({"customer_name", "customer_email", "customer_phone",
                                  "shipping_address"})
# What staff may see of the customer: the id and a masked contact, never the address.
STAFF_CUSTOMER_FIELDS = frozenset({"customer_id", "customer_contact"})


def allowed_fields(event_type: str, *, for_customer: bool) -> frozenset[str]:
    """The names a template of this event may use, for the customer or for staff."""
    spec = EVENTS.get(event_type)
    own = spec.fields if spec else frozenset()
    personal = CUSTOMER_ONLY_FIELDS if for_customer else STAFF_CUSTOMER_FIELDS
    return ORDER_FIELDS | own | personal


def event_fields(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The template fields of one event: its validated payload (JSON shapes), listed fields only.

    Amounts come as decimal strings, instants as ISO 8601; a malformed payload raises (the
    consumer dead-letters it).
    """
    spec = EVENTS.get(event_type)
    if spec is None:
        return {}
    data = parse_payload(event_type, dict(payload)).model_dump(mode="json")
    fields = {name: value for name, value in data.items() if name in spec.fields}
    if "missing_lines" in spec.fields:
        fields["missing_lines"] = "\n".join(_missing_line(item) for item in data.get("missing", []))
    return fields


def _missing_line(item: Mapping[str, Any]) -> str:
    if "requested" in item:
        return f"- {item['sku']}: requested {item['requested']}, available {item['available']}"
    return f"- {item['sku']}: {item['quantity']} waiting"
