"""Bench 6: the bank matcher (services/reconcile/bank), in memory, as ``import_statement`` runs it.

``OpenItems`` is built once from the open items (timed on its own), then each line is decided and
its decision applied, within a time budget. The target is 100,000 lines against 1,000,000 open
items in 30 s; what is reported against it is build + matching. Not included: loading the open
items from PostgreSQL (``store.known_invoices``) and writing the lines, matches and events.

The fixture makes every rule work: invoices issued over 50 days, four per customer, distinct
amounts (odd cents, so a sum of two never equals one invoice). Lines, booked two days after the
invoice they pay, in booking-day order: 40 % name the order (``reference``), 30 % pay one invoice's
amount (``amount_in_window``), 10 % pay two invoices of one customer (``several_invoices``), 10 %
pay one cent short (``amount_within_tolerance``: ambiguous, hundreds of invoices are that close)
and 10 % match nothing (every rule is tried).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from shared.bench.results import Report, Row

TARGET_LINES = 100_000
TARGET_ITEMS = 1_000_000
TARGET_SECONDS = 30.0
PER_CUSTOMER = 4
ISSUE_DAYS = 50


def fixtures(lines: int, items: int) -> tuple[list[Any], list[Any]]:
    """Open invoices and bank lines paying them (see the module doc), lines in booking order."""
    from services.reconcile.bank.matching import OpenInvoice
    from services.reconcile.bank.statement import BankLine

    start = date(2026, 9, 1)
    invoices = []
    for i in range(items):
        customer, nth = divmod(i, PER_CUSTOMER)
        amount = Decimal(10_001 + 2 * i).scaleb(-2)
        invoices.append(OpenInvoice(
            voucher_number=f"INV-{i:07d}", order_id=f"ORD-{i:07d}", currency="CNY", total=amount,
            outstanding=amount, issued_on=start + timedelta(days=customer % ISSUE_DAYS + 3 * nth),
            channel_order_id=f"WEB-{i:07d}", customer_id=f"C-{customer:06d}"))
    customers = max(1, items // PER_CUSTOMER)
    step = max(1, customers // max(1, lines))
    bank_lines = []
    for n in range(lines):
        first = invoices[(n * step % customers) * PER_CUSTOMER]
        kind, memo, amount = n % 10, "transfer", first.outstanding
        if kind < 4:
            memo = f"payment {first.order_id}"
        elif kind == 7 and items > 1:
            amount += invoices[(n * step % customers) * PER_CUSTOMER + 1].outstanding
        elif kind == 8:
            amount -= Decimal("0.01")
        elif kind == 9:
            amount = Decimal("999999.99") - Decimal(2 * n).scaleb(-2)
        bank_lines.append(BankLine(transaction_id=f"TX-{n:07d}", amount=amount, currency="CNY",
                                   booked_on=first.issued_on + timedelta(days=2),
                                   counterparty=f"customer {n}", memo=memo, line=n + 1))
    bank_lines.sort(key=lambda x: (x.booked_on, x.line))
    return bank_lines, invoices


def statement_csv(lines: list[Any]) -> str:
    """Bank lines as a statement in the standard format (``oms bank import``'s input)."""
    return "transaction_id,booked_at,amount,currency,counterparty,memo\n" + "".join(
        f"{x.transaction_id},{x.booked_on.isoformat()},{x.amount},{x.currency},{x.counterparty},"
        f"{x.memo}\n" for x in lines)


def match_rate(lines: int, items: int, budget: float) -> dict[str, Any]:
    """Build the index, then match lines until done or ``budget`` seconds have passed."""
    from services.reconcile.bank.index import OpenItems
    from services.reconcile.bank.matching import MatchPolicy

    started = time.perf_counter()
    bank_lines, invoices = fixtures(lines, items)
    fixture_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index = OpenItems(invoices, MatchPolicy())
    build_seconds = time.perf_counter() - started
    del invoices
    rules: Counter[str] = Counter()
    done = matched = 0
    started = time.perf_counter()
    for line in bank_lines:
        decision = index.decide(line)
        index.apply(decision)
        done += 1
        matched += decision.matched
        rules[f"{decision.rule}{'' if decision.matched else ' (unmatched)'}"] += 1
        if time.perf_counter() - started > budget:
            break
    return {"done": done, "seconds": time.perf_counter() - started, "matched": matched,
            "build_seconds": build_seconds, "fixture_seconds": fixture_seconds, "rules": dict(rules)}


def run_bank(report: Report, lines: int, items: int, budget: float = 20.0,
             log: Callable[[str], None] = print) -> None:
    try:
        import services.reconcile.bank.index  # noqa: F401
    except ModuleNotFoundError:
        report.add(Row("6 bank matching", "100,000 lines vs 1,000,000 open items", None, "s",
                       note="no indexed bank matcher (services/reconcile/bank/index.py) yet",
                       target="<= 30"))
        return
    run = match_rate(lines, items, budget)
    done, seconds, build = run["done"], run["seconds"], run["build_seconds"]
    rate = done / seconds if seconds else 0.0
    report.add(Row("6 bank matching", f"index build, {items:,} open items", build, "s",
                   note=f"once per statement; fixture generation ({run['fixture_seconds']:.0f} s) "
                        "not timed", extra={"items": items}))
    rules = ", ".join(f"{rule} {count:,}" for rule, count in sorted(run["rules"].items()))
    report.add(Row("6 bank matching", f"{done:,} lines vs {items:,} open items (decide + apply, "
                   "in memory)", rate, "lines/s",
                   note=f"{seconds:.1f} s; {run['matched']:,} matched; {rules}" + (
                       f"; stopped at the {budget:.0f} s budget of {lines:,} lines"
                       if done < lines else ""), extra=run))
    measured = done >= TARGET_LINES and items >= TARGET_ITEMS
    total = build + seconds * TARGET_LINES / max(1, done)
    how = ("measured" if measured else
           "extrapolated linearly in lines" if items >= TARGET_ITEMS else
           f"extrapolated from {items:,} items: build x {TARGET_ITEMS / items:g}, matching linearly in "
           "lines, per-line cost assumed independent of the items (indexed)")
    if items < TARGET_ITEMS:
        total = build * TARGET_ITEMS / items + seconds * TARGET_LINES / max(1, done)
    report.add(Row("6 bank matching", f"100,000 lines vs 1,000,000 open items, build + match ({how})",
                   total, "s", note="in memory: loading the open items from the database and "
                   "writing lines, matches and events not included (the import below does)"))
    log(f"  bank: index of {items:,} items built in {build:.1f} s; {rate:,.0f} lines/s; "
        f"100,000 x 1,000,000: {total:,.1f} s ({how})")


def load_open_items(url: str, invoices: list[Any]) -> None:
    """The open items into reconcile's tables (as its consumer keeps them), by COPY."""
    import psycopg

    from shared.db import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        with conn.cursor().copy("COPY bank_invoices (voucher_number, invoice_id, order_id, "
                                "currency, total, paid, issued_at) FROM STDIN") as copy:
            for i in invoices:
                copy.write_row((i.voucher_number, f"I-{i.voucher_number}", i.order_id, i.currency,
                                i.total, 0, datetime.combine(i.issued_on, dtime(9), UTC)))
        with conn.cursor().copy("COPY report_orders (order_id, channel, channel_order_id, "
                                "customer_id, currency, total, placed_at) FROM STDIN") as copy:
            for i in invoices:
                copy.write_row((i.order_id, "web", i.channel_order_id, i.customer_id, i.currency,
                                i.total, datetime.combine(i.issued_on, dtime(9), UTC)))


def run_bank_import(report: Report, make_database: Callable[[str], str], lines: int, items: int,
                    log: Callable[[str], None] = print) -> None:
    """``oms bank import``'s own path (``import_statement``) on reconcile's database: the open
    items read from PostgreSQL, the statement parsed, matched, its lines, allocations and events
    written in the one transaction; what the target is judged by."""
    import asyncio

    from services.reconcile import store
    from services.reconcile.bank.handlers import import_statement
    from services.reconcile.bank.matching import MatchPolicy
    from shared import gctune
    from shared.clock import ManualClock
    from shared.contract.envelope import Actor
    from shared.db import create_engine
    from shared.service import prepare_database
    from shared.settings import OmsSettings

    bank_lines, invoices = fixtures(lines, items)
    url = make_database("bank")
    csv = statement_csv(bank_lines).encode()
    del bank_lines

    async def schema() -> None:
        await (await prepare_database(url, store.create_schema)).dispose()

    async def timed() -> tuple[float, Any]:
        engine = create_engine(url)
        try:
            started = time.perf_counter()
            result = await import_statement(engine, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)),
                                            csv, "standard", MatchPolicy(),
                                            Actor(kind="user", id="bench", role="finance"))
            return time.perf_counter() - started, result
        finally:
            await engine.dispose()

    asyncio.run(schema())
    load_open_items(url, invoices)
    del invoices
    # as in the reconcile service's process, where the import runs (POST /bank/statements)
    gctune.tune(OmsSettings().gc_threshold)
    seconds, result = asyncio.run(timed())
    full = lines >= TARGET_LINES and items >= TARGET_ITEMS
    report.add(Row("6 bank matching", f"oms bank import: {lines:,} lines vs {items:,} open items "
                   "through PostgreSQL (measured)", seconds, "s",
                   target="<= 30" if full else "", met=seconds <= TARGET_SECONDS if full else None,
                   note=f"{result.imported:,} imported, {result.matched:,} matched, "
                        f"{result.unmatched:,} unmatched; reading the open items, matching, "
                        "writing lines, allocations and events, one transaction; loading the open "
                        "items into the table (COPY) not timed" + (
                            "" if full else "; the target is for 100,000 lines vs 1,000,000 "
                            "open items (`oms bench` without --quick)")))
    log(f"  bank import through PostgreSQL: {lines:,} lines vs {items:,} items in {seconds:.1f} s")
