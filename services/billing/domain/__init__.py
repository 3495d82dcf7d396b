"""Billing's pure domain: invoices, payments, revenue, credit notes and refunds of one order."""

from services.billing.domain.account import (
    SHIPPING_LINE,
    SHIPPING_SKU,
    Account,
    CreditNote,
    Invoice,
    InvoiceStanding,
    LineAmount,
    Payment,
    Recognition,
    Refund,
    Statement,
    statement,
)
from services.billing.domain.decisions import (
    Cause,
    Decision,
    Vouchers,
    amend,
    cancel,
    confirm,
    keep_order,
    recognize_shipment,
    record_payment,
    take_return,
)
from services.billing.domain.invoicing import (
    CREDIT_DAYS,
    CREDIT_NOTE_SERIES,
    INVOICE_SERIES,
    LEDGER_CATEGORIES,
    BillingRefusal,
    InvoiceDraft,
    InvoiceMismatch,
    apportion,
    average_tax_rate,
    deposit_amount,
    draft_invoice,
    due_date,
    ledger_category,
    plan_invoices,
    split_tax,
    voucher_number,
)
from services.billing.domain.revenue import effective_lines, order_values

__all__ = [
    "CREDIT_DAYS", "CREDIT_NOTE_SERIES", "INVOICE_SERIES", "LEDGER_CATEGORIES", "SHIPPING_LINE",
    "SHIPPING_SKU", "Account", "BillingRefusal", "Cause", "CreditNote", "Decision", "Invoice",
    "InvoiceDraft", "InvoiceMismatch", "InvoiceStanding", "LineAmount", "Payment", "Recognition",
    "Refund", "Statement", "Vouchers", "amend", "apportion", "average_tax_rate", "cancel",
    "confirm", "deposit_amount", "draft_invoice", "due_date", "effective_lines", "keep_order",
    "ledger_category", "order_values", "plan_invoices", "recognize_shipment", "record_payment",
    "split_tax", "statement", "take_return", "voucher_number",
]
