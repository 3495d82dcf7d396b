"""Planning the notifications of one event: recipients, channels (with fallback), rendered text."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Template, TemplateError

from services.notify.domain.customers import (
    CUSTOMER,
    UNKNOWN,
    OrderCustomer,
    customer_recipient,
    masked_contact,
    role_recipient,
)
from services.notify.domain.events import event_fields
from services.notify.domain.rules import (
    EMAIL,
    EVENT_ROLES,
    INBOX,
    URL_CHANNELS,
    WEBHOOK,
    NotificationRule,
    RuleSet,
)

NOTIFICATION_NAMESPACE = uuid.UUID("6f6d7300-0000-4000-8000-6e6f74696679")


@dataclass(frozen=True, slots=True)
class DeliverySetup:
    """Which channels this process can deliver over, and the URLs rules may leave out.

    ``email`` needs an SMTP host; ``webhook`` needs a signing secret and a URL; the chat robots
    need a URL (from the rule or here). A rule naming a channel not set up falls back to inbox.
    """

    email: bool = False
    webhook_secret: bool = False
    default_urls: Mapping[str, str] = field(default_factory=dict)

    def url_for(self, rule: NotificationRule, channel: str) -> str | None:
        return rule.urls.get(channel) or self.default_urls.get(channel)

    def unavailable(self, rule: NotificationRule, channel: str) -> str | None:
        """Why ``channel`` cannot be used for ``rule`` here, or None when it can."""
        if channel == EMAIL and not self.email:
            return "email is not set up (OMS_SMTP_HOST unset)"
        if channel == WEBHOOK and not self.webhook_secret:
            return "webhook is not set up (OMS_WEBHOOK_SECRET unset)"
        if channel in URL_CHANNELS and not self.url_for(rule, channel):
            return f"{channel} has no URL (rule key {channel}_url or OMS_NOTIFY_{channel.upper()}_URL)"
        return None


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
    """A notification to store and deliver; ``failure`` says why it cannot be delivered at all."""

    notification_id: str
    rule: str
    source_event_id: str
    source_event_type: str
    order_id: str | None
    recipient: str
    channel: str
    target: str
    subject: str
    body: str
    html_body: str | None = None
    failure: str | None = None

    @property
    def deliverable(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True)
class Plan:
    notifications: list[PlannedNotification]
    fallbacks: list[str]  # "rule x: email is not set up ... -> inbox" for the log


def notification_id(source_event_id: str, recipient: str, channel: str) -> str:
    """The same (event, recipient, channel) always gives the same id: replays cannot send twice."""
    return "N-" + uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}|{recipient}|{channel}").hex


def template_context(event: SourceEvent, customer: OrderCustomer | None, *, for_customer: bool
                     ) -> dict[str, Any]:
    """What one audience may see: the customer their own data; staff a masked contact only."""
    context: dict[str, Any] = {
        "order_id": event.order_id or UNKNOWN,
        "channel": customer.channel if customer else UNKNOWN,
        "channel_order_id": customer.channel_order_id if customer else UNKNOWN,
        "event_type": event.event_type,
        **event_fields(event.event_type, event.payload),
    }
    if for_customer:
        context["customer_name"] = (customer.name if customer else "") or "customer"
        context["customer_email"] = (customer.email if customer else None) or ""
        context["customer_phone"] = (customer.phone if customer else None) or ""
        context["shipping_address"] = customer.address if customer else ""
    else:
        context["customer_id"] = customer.customer_id if customer else UNKNOWN
        context["customer_contact"] = masked_contact(customer)
    return context


def render(template: Template, context: Mapping[str, Any]) -> str:
    return template.render(**context).strip()


def _recipients(rule: NotificationRule, event: SourceEvent, customer: OrderCustomer | None
                ) -> list[tuple[str, str | None]]:
    """(recipient, failure) per recipient spec of the rule."""
    found: list[tuple[str, str | None]] = []
    for spec in rule.recipients:
        if spec == CUSTOMER:
            if customer is None:
                found.append((customer_recipient(UNKNOWN),
                              f"customer of order {event.order_id} unknown: no order.placed seen, "
                              "so the customer cannot be addressed"))
            else:
                found.append((customer_recipient(customer.customer_id), None))
        elif spec in EVENT_ROLES:
            role = event.payload.get(EVENT_ROLES[spec])
            if isinstance(role, str) and role:
                found.append((role_recipient(role), None))
            else:
                found.append((role_recipient(UNKNOWN), f"event has no {EVENT_ROLES[spec]} to tell"))
        else:
            found.append((spec, None))
    return list(dict.fromkeys(found))


def _channels(rule: NotificationRule, setup: DeliverySetup, fallbacks: list[str]) -> list[str]:
    channels: list[str] = []
    for channel in rule.channels:
        why = setup.unavailable(rule, channel)
        if why is not None:
            fallbacks.append(f"rule {rule.name}: {why}; sending to {INBOX} instead")
            channel = INBOX
        if channel not in channels:
            channels.append(channel)
    return channels


def _target(rule: NotificationRule, channel: str, recipient: str, customer: OrderCustomer | None,
            staff_email: Mapping[str, str], setup: DeliverySetup) -> tuple[str, str | None]:
    """Where the message goes (inbox: the recipient; email: the address; else: the URL)."""
    if channel == INBOX:
        return recipient, None
    if channel == EMAIL:
        kind, _, ident = recipient.partition(":")
        if kind == CUSTOMER:
            if customer is not None and customer.email:
                return customer.email, None
            return "", f"customer {ident} has no email address on file"
        address = staff_email.get(ident)
        if address:
            return address, None
        return "", f"no email address for role {ident}: add it under [staff_email] in the rules file"
    return setup.url_for(rule, channel) or "", None


def plan_notifications(event: SourceEvent, customer: OrderCustomer | None, rules: RuleSet,
                       setup: DeliverySetup | None = None) -> Plan:
    """The notifications one event causes: addressed, rendered, each with its stable id."""
    setup = setup or DeliverySetup()
    planned: list[PlannedNotification] = []
    fallbacks: list[str] = []
    for rule in rules.for_event(event.event_type):
        channels = _channels(rule, setup, fallbacks)
        for recipient, failure in _recipients(rule, event, customer):
            for_customer = recipient.startswith(f"{CUSTOMER}:") and rule.for_customer_only
            subject = body = ""
            html_body: str | None = None
            try:
                context = template_context(event, customer, for_customer=for_customer)
                context["recipient"] = recipient
                subject, body = render(rule.subject, context), render(rule.body, context)
                html_body = render(rule.html_body, context) if rule.html_body else None
            except TemplateError as error:
                failure = failure or (f"rule {rule.name}: template could not be rendered: "
                                      f"{type(error).__name__}: {error}")
            for channel in channels:
                target, no_address = _target(rule, channel, recipient, customer,
                                             rules.staff_email, setup)
                planned.append(PlannedNotification(
                    notification_id=notification_id(event.event_id, recipient, channel),
                    rule=rule.name, source_event_id=event.event_id,
                    source_event_type=event.event_type, order_id=event.order_id,
                    recipient=recipient, channel=channel, target=target, subject=subject,
                    body=body, html_body=html_body if channel == EMAIL else None,
                    failure=failure or no_address,
                ))
    unique = {p.notification_id: p for p in reversed(planned)}  # first rule wins a duplicate
    return Plan([p for p in planned if unique[p.notification_id] is p], fallbacks)


# ---- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base, 2 x base, 4 x base ... capped; give up after ``max_attempts``."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed tries, or None: give up."""
        if attempts >= self.max_attempts:
            return None
        delay: timedelta = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        return now + delay
