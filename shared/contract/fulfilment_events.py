"""Payloads of inventory's and billing's follow-up facts: releases, deductions, adjustments,
alerts, voids, revenue, credit notes and refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.payloads import Payload, ReservedLine


class StockReleased(Payload):
    """Reserved units given back (cancellation, amendment that lowers quantities)."""

    event_type = "stock.released"

    order_id: str
    lines: list[ReservedLine]
    reason: Literal["cancelled", "amended", "approval_rejected", "other"] = "other"


class WarehousePrioritySet(Payload):
    """A warehouse's serving priority changed (lower numbers are asked first for reservations).

    Stream ``warehouse:<code>``, key = the code; who changed it is the envelope's ``actor``.
    ``previous`` is None when the warehouse had no priority row yet (it served with the default).
    Setting the priority it already has records nothing.
    """

    event_type = "warehouse.priority_set"

    warehouse: str
    priority: int = Field(ge=0)
    previous: int | None = None


class StockDeducted(Payload):
    """Units that left a warehouse with a shipment (on hand and reserved both go down)."""

    event_type = "stock.deducted"

    order_id: str
    shipment_id: str
    lines: list[ReservedLine]


class StockAdjusted(Payload):
    """On hand of a SKU in one warehouse corrected by a person (count difference, damage, loss).

    Stream ``stock:<sku>@<warehouse>`` and key = SKU, like stock.received; who adjusted is the
    envelope's ``actor`` (as for receipts). Only accepted adjustments are events: one that would
    leave fewer units on hand than are reserved is refused (HTTP 409) and records nothing.
    """

    event_type = "stock.adjusted"

    sku: str
    warehouse: str
    quantity: int  # signed, never 0: units found (> 0) or lost (< 0)
    on_hand: int  # in that warehouse after the adjustment
    reason: str


class StockLow(Payload):
    """Available stock of a SKU crossed below the catalog threshold (once per crossing)."""

    event_type = "stock.low"

    sku: str
    warehouse: str | None = None  # None: across all warehouses
    available: int
    threshold: int


class InvoiceVoided(Payload):
    event_type = "invoice.voided"

    order_id: str
    invoice_id: str
    voucher_number: str
    reason: str
    total: Decimal
    currency: str


class RecognizedLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str
    quantity: int
    net: Decimal
    tax: Decimal


class RevenueRecognized(Payload):
    event_type = "revenue.recognized"

    order_id: str
    shipment_id: str
    voucher_number: str | None = None
    currency: str
    lines: list[RecognizedLine] = Field(default_factory=list)
    net: Decimal
    tax: Decimal
    gross: Decimal


class CreditNoteIssued(Payload):
    """Money owed back to the customer; reverses revenue already recognised for those goods."""

    event_type = "credit_note.issued"

    order_id: str
    credit_note_id: str
    voucher_number: str  # its own series, e.g. CN-2026-000001
    invoice_voucher_number: str | None = None
    reason: Literal["cancelled", "returned", "amended", "overpaid", "other"]
    currency: str
    lines: list[RecognizedLine] = Field(default_factory=list)
    net: Decimal
    tax: Decimal
    total: Decimal
    revenue_reversed: Decimal = Decimal("0")


class RefundIssued(Payload):
    event_type = "refund.issued"

    order_id: str
    refund_id: str
    credit_note_voucher_number: str | None = None
    method: str
    amount: Decimal
    currency: str
    issued_at: datetime
