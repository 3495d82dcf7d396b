"""Bench 6: the bank matcher's rules (services/reconcile/bank/matching.py), in memory.

Measures what ``import_statement`` does per line (``decide`` then ``apply``) against N open
invoices, without the database writes, within a time budget, and extrapolates to 100,000 lines
against 1,000,000 open items (the matcher scans every invoice per line: cost ~ lines x items).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from shared.bench.results import Report, Row

TARGET_LINES = 100_000
TARGET_ITEMS = 1_000_000
TARGET_SECONDS = 30.0


def fixtures(lines: int, items: int) -> tuple[list[Any], list[Any]]:
    """Open invoices (distinct amounts) and bank lines paying them: half name the order in the
    memo (rule ``reference``), half only match by amount (rule ``amount_in_window``)."""
    from services.reconcile.bank.matching import OpenInvoice
    from services.reconcile.bank.statement import BankLine

    day = date(2026, 11, 2)
    invoices = [OpenInvoice(voucher_number=f"INV-{i:07d}", order_id=f"ORD-{i:07d}", currency="CNY",
                            total=Decimal(100 + i) / 100 + 100, outstanding=Decimal(100 + i) / 100 + 100,
                            issued_on=day, channel_order_id=f"WEB-{i:07d}", customer_id=f"C-{i}")
                for i in range(items)]
    step = max(1, items // max(1, lines))
    bank_lines = []
    for n in range(lines):
        invoice = invoices[(n * step) % items]
        memo = f"payment {invoice.order_id}" if n % 2 == 0 else "transfer"
        bank_lines.append(BankLine(transaction_id=f"TX-{n:07d}", booked_on=day + timedelta(days=1),
                                   amount=invoice.outstanding, currency="CNY",
                                   counterparty=f"customer {n}", memo=memo, line=n + 1))
    return bank_lines, invoices


def match_rate(lines: int, items: int, budget: float) -> tuple[int, float, int]:
    """(lines matched within the budget, seconds, how many were matched)."""
    from services.reconcile.bank.matching import MatchPolicy, apply, decide

    bank_lines, invoices = fixtures(lines, items)
    policy = MatchPolicy()
    done = matched = 0
    started = time.perf_counter()
    for line in bank_lines:
        decision = decide(line, invoices, policy)
        invoices = apply(invoices, decision)
        done += 1
        matched += decision.matched
        if time.perf_counter() - started > budget:
            break
    return done, time.perf_counter() - started, matched


def run_bank(report: Report, lines: int, items: int, budget: float = 20.0,
             log: Callable[[str], None] = print) -> None:
    try:
        import services.reconcile.bank.matching  # noqa: F401
    except ModuleNotFoundError:
        report.add(Row("6 bank matching", "100,000 lines vs 1,000,000 open items", None, "s",
                       note="no bank matcher (services/reconcile/bank) yet", target="<= 30"))
        return
    done, seconds, matched = match_rate(lines, items, budget)
    per_line = seconds / max(1, done)
    extrapolated = TARGET_LINES * per_line * (TARGET_ITEMS / items)
    report.add(Row("6 bank matching", f"{done:,} lines vs {items:,} open items (decide + apply, "
                   "in memory)", done / seconds, "lines/s",
                   note=f"{seconds:.1f} s; {matched:,} matched" + (
                       f"; stopped at the {budget:.0f} s budget of {lines:,} lines"
                       if done < lines else "")))
    report.add(Row("6 bank matching", "100,000 lines vs 1,000,000 open items (extrapolated)",
                   extrapolated, "s", target="<= 30", met=extrapolated <= TARGET_SECONDS,
                   note="per-line cost x 100,000 x (1,000,000 / items): the matcher scans every "
                        "invoice per line; database writes not included"))
    log(f"  bank: {done / seconds:,.0f} lines/s at {items:,} items -> {extrapolated:,.0f} s "
        "extrapolated")
