"""Reconcile's pure core: the per-order fact sheet, the consistency rules and grace periods."""

from services.reconcile.domain.apply import FACT_EVENT_TYPES, apply_event
from services.reconcile.domain.discrepancies import Review, review, status_since, track_since
from services.reconcile.domain.document import describe, from_document, to_document
from services.reconcile.domain.facts import (
    Amendment,
    CreditNoteFact,
    DeductionFact,
    InvoiceFact,
    NotificationFact,
    OrderFacts,
    PaymentFact,
    RefundFact,
)
from services.reconcile.domain.rules import (
    CONSISTENT,
    FOLLOW_UPS,
    PENDING,
    WAITING_KINDS,
    Assessment,
    Finding,
    FollowUp,
    Status,
    assess,
    money,
)

__all__ = [
    "CONSISTENT", "FACT_EVENT_TYPES", "FOLLOW_UPS", "PENDING", "WAITING_KINDS", "Amendment",
    "Assessment", "CreditNoteFact", "DeductionFact", "Finding", "FollowUp", "InvoiceFact",
    "NotificationFact", "OrderFacts", "PaymentFact", "RefundFact", "Review", "Status",
    "apply_event", "assess", "describe", "from_document", "money", "review", "status_since",
    "to_document", "track_since",
]
