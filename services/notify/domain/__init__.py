"""Notify's pure core: the rules file, who is told what over which channel, privacy, retries."""

from services.notify.domain.customers import (
    CUSTOMER,
    UNKNOWN,
    OrderCustomer,
    address_text,
    customer_recipient,
    mask_email,
    mask_phone,
    masked_contact,
    parse_recipient,
    role_recipient,
)
from services.notify.domain.events import EVENTS, allowed_fields, event_fields
from services.notify.domain.plan import (
    DeliverySetup,
    Plan,
    PlannedNotification,
    RetryPolicy,
    SourceEvent,
    notification_id,
    plan_notifications,
    template_context,
)
from services.notify.domain.rules import (
    CHANNELS,
    DINGTALK,
    EMAIL,
    INBOX,
    WEBHOOK,
    WECOM,
    NotificationRule,
    RulesError,
    RuleSet,
    parse_rules,
    rule_summary,
)

__all__ = [
    "CHANNELS", "CUSTOMER", "DINGTALK", "EMAIL", "EVENTS", "INBOX", "UNKNOWN", "WEBHOOK", "WECOM",
    "DeliverySetup", "NotificationRule", "OrderCustomer", "Plan", "PlannedNotification",
    "RetryPolicy", "RuleSet", "RulesError", "SourceEvent", "address_text", "allowed_fields",
    "customer_recipient", "event_fields", "mask_email", "mask_phone", "masked_contact",
    "notification_id", "parse_recipient", "parse_rules", "plan_notifications", "role_recipient",
    "rule_summary", "template_context",
]
