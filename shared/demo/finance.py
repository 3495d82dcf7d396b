"""The demo's finance step: an order paid by bank transfer, whose statement line finance matches by
hand. The customer sent 50.00 more than the invoice and wrote no reference, so no rule matches the
line (it stays unmatched); finance imports the statement, sees it and matches it to the invoice,
the 50.00 kept on the line to refund. Billing books the payment and the order is paid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from shared.demo.plan import DemoPlan
from shared.demo.scenarios import Operator, Outcome, special_order, until
from shared.runtime.info import RuntimeInfo

FINANCE = {"X-API-Key": "demo-finance"}
TRANSACTION = "DEMO-BANK-0001"
OVERPAID = Decimal("50.00")
NOTE = "the customer confirmed by phone; 50.00 paid too much, to refund"


def plan_bank_transfer(plan: DemoPlan) -> Outcome:
    """The order (prepaid by bank transfer: no storefront payment) and what billing will book."""
    message = special_order(34, "web", plan.start + timedelta(hours=2),
                            payment={"method": "bank_transfer", "terms": "prepaid"})
    plan.add_order(message)
    plan.payments += 1  # the bank payment billing books once finance matched the line
    return Outcome("bank_transfer", "paid by bank transfer, the statement line matched by hand",
                   message, "paid")


def run_finance(operator: Operator, client: httpx.Client, info: RuntimeInfo,
                outcome: Outcome) -> None:
    """Import the day's statement, then match its one unmatched line by hand (as finance would:
    `oms bank import`, `oms bank lines`, `oms bank match`)."""
    order_id = operator.wait(outcome.message, lambda found: True)["order"]["order_id"]
    billing, reconcile = info.url("billing"), info.url("reconcile")

    def invoiced() -> dict[str, Any] | None:
        found = client.get(f"{billing}/invoices", params={"order_id": order_id},
                           headers=FINANCE).json()
        return found[0] if found else None

    invoice = until(invoiced, 90, "its invoice")
    voucher = invoice["voucher_number"]

    def known_to_reconcile() -> bool | None:
        items = client.get(f"{reconcile}/bank/open-items", headers=FINANCE).json()
        return True if any(i["voucher_number"] == voucher
                           for i in items["unpaid_invoices"]) else None

    until(known_to_reconcile, 90, "the invoice among reconcile's open items")
    amount = Decimal(invoice["total"]) + OVERPAID
    statement = ("transaction_id,booked_at,amount,currency,counterparty,memo\n"
                 f"{TRANSACTION},{datetime.now(UTC).date()},{amount},{invoice['currency']},"
                 f"{outcome.message['customer']['name']},货款\n")
    imported = client.post(f"{reconcile}/bank/statements", content=statement.encode(),
                           headers={**FINANCE, "Content-Type": "text/csv"})
    imported.raise_for_status()
    [decision] = imported.json()["decisions"]
    outcome.steps.append(f"statement imported: {amount} {invoice['currency']} "
                         f"{'matched' if decision['matched'] else 'unmatched'} ({decision['reason']})")
    if decision["matched"]:
        return  # a rule matched it after all: nothing for finance to do (the checks still hold)
    matched = client.post(f"{reconcile}/bank/lines/{TRANSACTION}/match", headers=FINANCE,
                          json={"invoices": [{"voucher_number": voucher}], "note": NOTE})
    matched.raise_for_status()
    outcome.steps.append(f"matched by hand to {voucher} by fei.finance ({OVERPAID} left on the "
                         "line to refund); billing books it")
    operator.wait(outcome.message, lambda found: found["order"]["status"] == "paid")
