"""Payloads of the order lifecycle beyond placement: approvals, amendments, shipping, returns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.payloads import Payload, SkuQuantity

ApprovalKind = Literal["order", "amendment"]


class _ApprovalStep(Payload):
    """What every approval event says: which order, which rule (and its version), which level."""

    order_id: str
    kind: ApprovalKind = "order"
    request_id: str | None = None
    rule_id: str
    rules_version: str
    level: int = Field(ge=0)
    levels: int = Field(ge=1)
    role: str


class OrderApprovalRequested(_ApprovalStep):
    event_type = "order.approval_requested"

    sla_seconds: int
    due_at: datetime
    escalate_to: str
    reasons: list[str] = Field(default_factory=list)
    plan_levels: list[dict[str, Any]] = Field(default_factory=list)  # every level: role, sla, escalation
    amendment: dict[str, Any] | None = None


class OrderApproved(_ApprovalStep):
    event_type = "order.approved"

    approver: str
    approver_role: str
    comment: str | None = None
    final: bool


class OrderApprovalRejected(_ApprovalStep):
    event_type = "order.approval_rejected"

    approver: str
    approver_role: str
    reason: str


class OrderApprovalEscalated(_ApprovalStep):
    event_type = "order.approval_escalated"

    escalate_to: str
    due_at: datetime
    escalated_at: datetime
    escalations: int


class OrderAmended(Payload):
    event_type = "order.amended"

    order_id: str
    request_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    lines_delta: list[SkuQuantity] = Field(default_factory=list)
    total_before: Decimal
    total_after: Decimal
    currency: str
    approved_by: list[str] = Field(default_factory=list)

    @property
    def raises_total(self) -> bool:
        """An amendment that raises the total reopens a paid order's payment: the order is paid
        again (a second order.paid) once billing settles the new total."""
        return self.total_after > self.total_before


class OrderAmendmentRefused(Payload):
    event_type = "order.amendment_refused"

    order_id: str
    request_id: str
    reason: str
    status: str
    allowed: list[str] = Field(default_factory=list)


class OrderDepositPaid(Payload):
    event_type = "order.deposit_paid"

    order_id: str
    deposit_amount: Decimal
    paid_amount: Decimal
    currency: str


class ShippedLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    line_no: int
    sku: str
    quantity: int


class OrderShipped(Payload):
    event_type = "order.shipped"

    order_id: str
    shipment_id: str
    warehouse: str
    carrier: str
    tracking_number: str
    lines: list[ShippedLine]
    complete: bool
    shipped_at: datetime


class OrderDelivered(Payload):
    event_type = "order.delivered"

    order_id: str
    delivered_at: datetime


class OrderCompleted(Payload):
    event_type = "order.completed"

    order_id: str
    completed_at: datetime
    reason: str


class OrderCancelled(Payload):
    event_type = "order.cancelled"

    order_id: str
    reason: str
    stage: str
    request_id: str | None = None
    cancelled_by: str


class OrderReturnRequested(Payload):
    event_type = "order.return_requested"

    order_id: str
    request_id: str
    lines: list[SkuQuantity]
    reason: str


class OrderReturned(Payload):
    event_type = "order.returned"

    order_id: str
    request_id: str
    lines: list[SkuQuantity]
    warehouse: str
    received_at: datetime
