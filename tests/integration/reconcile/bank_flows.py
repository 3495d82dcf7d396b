"""Orders and invoices for the bank tests, published to reconcile through the real broker."""

from __future__ import annotations

from shared.contract.envelope import EventEnvelope
from tests.unit.reconcile.samples import CUSTOMER, envelope, invoice_issued, new_order_id, order_placed

HEADER = "transaction_id,booked_at,amount,currency,counterparty,memo\n"


def invoiced_order(voucher: str, customer_id: str) -> tuple[str, list[EventEnvelope]]:
    """An order of 395.00 and its invoice ``voucher``, not paid yet."""
    order_id = new_order_id()
    placed = order_placed(order_id, customer={**CUSTOMER, "id": customer_id})
    invoice = invoice_issued(order_id).model_copy(update={"voucher_number": voucher})
    return order_id, [envelope(placed), envelope(invoice)]


def statement(first_voucher: str) -> str:
    """T-1 refers to the first invoice; T-2 (395.00, no reference) fits two others; T-3 fits none;
    line 5 is refused."""
    return (HEADER
            + f"T-1,2026-11-22,395.00,CNY,王芳,货款 {first_voucher}\n"
            + "T-2,2026-11-22,395.00,CNY,李雷,transfer\n"
            + "T-3,2026-11-22T09:00:00+08:00,50.00,CNY,Nobody,unknown\n"
            + "T-4,2026-11-22,abc,CNY,Nobody,bad amount\n")
