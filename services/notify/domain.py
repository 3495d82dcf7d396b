"""Who is told what about an order: the notification rule table, templates and privacy masking."""

from __future__ import annotations

import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.contract.payloads import OrderConfirmed, OrderPaid, StockShortage, parse_payload
from shared.money import Money, MoneyError

INBOX = "inbox"
CUSTOMER = "customer"
UNKNOWN = "unknown"
NOTIFICATION_NAMESPACE = uuid.UUID("6f6d7300-0000-4000-8000-6e6f74696679")

# Fields every template may use, whoever reads it: facts of the order, no personal data.
ORDER_FIELDS = frozenset({"order_id", "channel", "channel_order_id"})
# Fields only the customer's own notifications may use.
CUSTOMER_ONLY_FIELDS = frozenset({"customer_name"})
# What staff may see of the customer: the id and a masked contact.
STAFF_CUSTOMER_FIELDS = frozenset({"customer_id", "customer_contact"})


# ---- the customer of an order, as notify keeps it -------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderCustomer:
    """The customer of one order, from ``order.placed``; personal data stays in notify's store."""

    order_id: str
    customer_id: str
    name: str
    email: str | None
    phone: str | None
    channel: str
    channel_order_id: str

    @classmethod
    def from_order_placed(cls, payload: Mapping[str, Any]) -> OrderCustomer:
        customer = payload.get("customer") or {}
        return cls(
            order_id=str(payload["order_id"]),
            customer_id=str(customer.get("id") or UNKNOWN),
            name=str(customer.get("name") or ""),
            email=_text_or_none(customer.get("email")),
            phone=_text_or_none(customer.get("phone")),
            channel=str(payload.get("channel") or ""),
            channel_order_id=str(payload.get("channel_order_id") or ""),
        )


def _text_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def mask_email(email: str) -> str:
    """``wf@example.com`` -> ``w*@example.com``: enough for staff to recognise, not to write to."""
    local, at, domain = email.partition("@")
    if not at:
        return mask_phone(email)
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


def mask_phone(phone: str) -> str:
    """``+8613800138000`` -> ``+*********8000``: only the last four digits stay visible."""
    digits = sum(ch.isdigit() for ch in phone)
    keep = 4 if digits > 6 else 0
    masked: list[str] = []
    seen = 0
    for ch in phone:
        if ch.isdigit():
            seen += 1
            masked.append(ch if seen > digits - keep else "*")
        else:
            masked.append(ch)
    return "".join(masked)


def masked_contact(customer: OrderCustomer | None) -> str:
    if customer is None:
        return UNKNOWN
    if customer.email:
        return mask_email(customer.email)
    if customer.phone:
        return mask_phone(customer.phone)
    return "no contact on file"


# ---- the rule table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationRule:
    """When an event of ``event_type`` happens, tell ``audience`` over ``channel`` with a template.

    ``audience`` is ``"customer"`` (the customer of the order) or a staff role (``"warehouse"``).
    Templates are ``str.format`` strings over plain names; a template that names a field its
    audience may not see is refused when the rule is built, so personal data cannot leak by a
    typo in a staff template.
    """

    name: str
    event_type: str
    audience: str
    channel: str
    subject: str
    body: str

    def __post_init__(self) -> None:
        allowed = allowed_fields(self.event_type, self.audience)
        for template in (self.subject, self.body):
            unknown = sorted(template_fields(template) - allowed)
            if unknown:
                raise ValueError(
                    f"rule {self.name!r}: template uses {', '.join(unknown)}, which a "
                    f"{self.audience} notification of {self.event_type} may not use; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )

    @property
    def for_customer(self) -> bool:
        return self.audience == CUSTOMER


def template_fields(template: str) -> set[str]:
    """The names a format string refers to; attribute and index access are refused."""
    names: set[str] = set()
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"template field {{{field}}} must be a plain name")
        if spec and "{" in spec:
            raise ValueError(f"template field {{{field}}} may not nest fields in its format spec")
        names.add(field)
    return names


# What each event contributes to a template (see ``event_fields``).
EVENT_FIELDS: dict[str, frozenset[str]] = {
    "order.confirmed": frozenset({"total", "currency"}),
    "order.paid": frozenset({"paid_amount", "currency", "voucher_number"}),
    "stock.shortage": frozenset({"missing_lines"}),
}


def allowed_fields(event_type: str, audience: str) -> frozenset[str]:
    own = EVENT_FIELDS.get(event_type, frozenset())
    if audience == CUSTOMER:
        return ORDER_FIELDS | own | CUSTOMER_ONLY_FIELDS
    return ORDER_FIELDS | own | STAFF_CUSTOMER_FIELDS


RULES: tuple[NotificationRule, ...] = (
    NotificationRule(
        name="order-confirmed-to-customer",
        event_type="order.confirmed",
        audience=CUSTOMER,
        channel=INBOX,
        subject="Your order {channel_order_id} is confirmed",
        body=(
            "Dear {customer_name},\n\n"
            "your order {channel_order_id} ({channel}) over {total} {currency} is confirmed: "
            "the goods are reserved for you.\n\nOrder reference: {order_id}"
        ),
    ),
    NotificationRule(
        name="payment-received-to-customer",
        event_type="order.paid",
        audience=CUSTOMER,
        channel=INBOX,
        subject="Payment received for order {channel_order_id}",
        body=(
            "Dear {customer_name},\n\n"
            "we received your payment of {paid_amount} {currency} for order {channel_order_id}. "
            "Thank you.\n\nInvoice: {voucher_number}\nOrder reference: {order_id}"
        ),
    ),
    NotificationRule(
        name="stock-shortage-to-warehouse",
        event_type="stock.shortage",
        audience="warehouse",
        channel=INBOX,
        subject="Stock shortage for order {order_id}",
        body=(
            "Order {order_id} ({channel} {channel_order_id}) could not be reserved. Missing:\n"
            "{missing_lines}\n\nCustomer {customer_id} ({customer_contact}) is waiting for it."
        ),
    ),
)


def rules_for(event_type: str, rules: Sequence[NotificationRule] = RULES) -> list[NotificationRule]:
    return [rule for rule in rules if rule.event_type == event_type]


# ---- planning notifications for one event --------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """The event a notification is about."""

    event_id: str
    event_type: str
    payload: Mapping[str, Any]

    @property
    def order_id(self) -> str | None:
        value = self.payload.get("order_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    """A notification to store and send; ``failure`` says why it cannot be delivered."""

    notification_id: str
    rule: str
    source_event_id: str
    source_event_type: str
    order_id: str | None
    recipient: str
    channel: str
    subject: str
    body: str
    failure: str | None = None

    @property
    def sent(self) -> bool:
        return self.failure is None


def notification_id(source_event_id: str, recipient: str, channel: str) -> str:
    """The same (event, recipient, channel) always gives the same id: replays cannot send twice."""
    return "N-" + uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}|{recipient}|{channel}").hex


def customer_recipient(customer_id: str) -> str:
    return f"customer:{customer_id}"


def role_recipient(role: str) -> str:
    return f"role:{role}"


def money_text(amount: Decimal, currency: str) -> str:
    try:
        return str(Money(amount, currency).amount)
    except MoneyError:
        return str(amount)


def event_fields(event: SourceEvent) -> dict[str, str]:
    """The template fields an event contributes (amounts as decimal strings)."""
    payload = parse_payload(event.event_type, dict(event.payload))
    if isinstance(payload, OrderConfirmed):
        return {"total": money_text(payload.total, payload.currency), "currency": payload.currency}
    if isinstance(payload, OrderPaid):
        return {
            "paid_amount": money_text(payload.paid_amount, payload.currency),
            "currency": payload.currency,
            "voucher_number": payload.voucher_number or "not issued yet",
        }
    if isinstance(payload, StockShortage):
        lines = [f"- {m.sku}: requested {m.requested}, available {m.available}" for m in payload.missing]
        return {"missing_lines": "\n".join(lines)}
    return {}


def template_context(event: SourceEvent, customer: OrderCustomer | None, *, for_customer: bool
                     ) -> dict[str, str]:
    """What one audience may see: the customer their own name; staff a masked contact only."""
    context = {
        "order_id": event.order_id or UNKNOWN,
        "channel": customer.channel if customer else UNKNOWN,
        "channel_order_id": customer.channel_order_id if customer else UNKNOWN,
        **event_fields(event),
    }
    if for_customer:
        context["customer_name"] = (customer.name if customer else "") or "customer"
    else:
        context["customer_id"] = customer.customer_id if customer else UNKNOWN
        context["customer_contact"] = masked_contact(customer)
    return context


def plan_notifications(
    event: SourceEvent,
    customer: OrderCustomer | None,
    rules: Sequence[NotificationRule] = RULES,
) -> list[PlannedNotification]:
    """The notifications one event causes: rendered, addressed, each with its stable id."""
    planned: list[PlannedNotification] = []
    for rule in rules_for(event.event_type, rules):
        failure: str | None = None
        if rule.for_customer:
            if customer is None:
                recipient = customer_recipient(UNKNOWN)
                failure = (f"customer of order {event.order_id} unknown: no order.placed seen, "
                           "so the customer cannot be addressed")
            else:
                recipient = customer_recipient(customer.customer_id)
        else:
            recipient = role_recipient(rule.audience)
        context = template_context(event, customer, for_customer=rule.for_customer)
        planned.append(
            PlannedNotification(
                notification_id=notification_id(event.event_id, recipient, rule.channel),
                rule=rule.name,
                source_event_id=event.event_id,
                source_event_type=event.event_type,
                order_id=event.order_id,
                recipient=recipient,
                channel=rule.channel,
                subject=rule.subject.format_map(context),
                body=rule.body.format_map(context),
                failure=failure,
            )
        )
    return planned


def parse_recipient(recipient: str) -> tuple[str, str]:
    """``customer:C-1001`` -> (``customer``, ``C-1001``); ValueError with what is accepted."""
    kind, sep, ident = recipient.partition(":")
    if not sep or kind not in ("customer", "role") or not ident.strip():
        raise ValueError(
            f"recipient {recipient!r} must be 'customer:<customer id>' or 'role:<staff role>'"
        )
    return kind, ident
