"""A statement's import writes a chunk of lines at a time (services/reconcile/bank/writes.py):
whatever the chunk size, the same lines, allocations, matched amounts and events, every event
stream hash-chained; two lines paying one invoice in one chunk both count."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.bank import handlers, writes
from services.reconcile.bank.handlers import import_statement
from services.reconcile.bank.index import OpenItems
from services.reconcile.bank.matching import MatchPolicy
from services.reconcile.bank.store import bank_invoices, report_orders
from shared.audit.verify import verify_store
from shared.bench.bank import fixtures, statement_csv
from shared.clock import ManualClock
from shared.contract.envelope import Actor
from shared.eventbatch import PreparedEvents
from shared.service import prepare_database
from tests.conftest import create_database
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

FINANCE = Actor(kind="user", id="chen.jing", role="finance")
QUERIES = {
    "lines": "SELECT transaction_id, booked_on, amount, status, rule, score, difference, flagged,"
             " reason, candidates, imported_by FROM bank_lines ORDER BY transaction_id",
    "allocations": "SELECT id, transaction_id, voucher_number, order_id, applied"
                   " FROM bank_allocations ORDER BY id",
    "matched": "SELECT voucher_number, matched FROM bank_invoices WHERE matched <> 0 ORDER BY 1",
    "events": "SELECT stream_id, stream_version, event_type, message_key, payload, causation_id,"
              " actor FROM events ORDER BY position",
}


def statement() -> tuple[str, str]:
    """40 lines of the bench's fixture (every rule) and two lines paying one invoice."""
    lines, invoices = fixtures(40, 400)
    rest = Decimal("3.00")  # short within the tolerance, then the rest: both match invoice 5
    day = invoices[5].issued_on.isoformat()
    body = statement_csv(lines) + (f"H-1,{day},{invoices[5].outstanding - rest},CNY,halves,payment "
             f"{invoices[5].order_id}\n"
             f"H-2,{day},{rest},CNY,halves,payment {invoices[5].order_id}\n")
    return body, invoices[5].voucher_number


@asynccontextmanager
async def loaded(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A reconcile database holding the fixture's 400 open items."""
    name = f"t_bank_{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = await prepare_database(await create_database(postgres_url, name),
                                                 store.create_schema)
    try:
        _, invoices = fixtures(40, 400)
        async with engine.begin() as conn:
            await conn.execute(bank_invoices.insert(), [
                {"voucher_number": i.voucher_number, "invoice_id": f"I-{i.voucher_number}",
                 "order_id": i.order_id, "currency": i.currency, "total": i.total,
                 "paid": Decimal(0), "issued_at": datetime.combine(i.issued_on, time(9), UTC)}
                for i in invoices])
            await conn.execute(report_orders.insert(), [
                {"order_id": i.order_id, "channel": "web", "channel_order_id": i.channel_order_id,
                 "customer_id": i.customer_id, "currency": "CNY", "total": i.total}
                for i in invoices])
        yield engine
    finally:
        await engine.dispose()
        await drop(postgres_url, name)


async def run_import(engine: AsyncEngine) -> handlers.ImportResult:
    csv, _ = statement()
    return await import_statement(engine, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)),
                                  csv.encode(), "standard", MatchPolicy(), FINANCE)


async def stored(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as conn:
        return {key: [tuple(row) for row in await conn.execute(text(sql))]
                for key, sql in QUERIES.items()}


async def imported(postgres_url: str, chunk: int, monkeypatch: pytest.MonkeyPatch
                   ) -> dict[str, list[tuple[Any, ...]]]:
    async with loaded(postgres_url) as engine:
        monkeypatch.setattr(writes, "CHUNK", chunk)
        result = await run_import(engine)
        assert result.imported == 42 and not result.errors, result.errors
        assert [d["matched"] for d in result.decisions if d["transaction_id"] in ("H-1", "H-2")
                ] == [True, True]
        async with engine.connect() as conn:
            assert (await verify_store(conn)).intact
        return await stored(engine)


async def test_the_chunk_size_changes_nothing(postgres_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    one_by_one = await imported(postgres_url, 1, monkeypatch)
    chunked = await imported(postgres_url, 7, monkeypatch)  # several chunks, the last one short
    assert chunked == one_by_one
    rules = {row[4] for row in chunked["lines"]}
    assert {"reference", "amount_in_window", "none"} <= rules, rules
    assert len(chunked["events"]) >= 42  # one per unmatched line, one per allocation
    _, halved = statement()
    allocated: dict[str, Decimal] = {}
    for _, _, voucher, _, applied in chunked["allocations"]:
        allocated[voucher] = allocated.get(voucher, Decimal(0)) + applied
    assert dict(chunked["matched"]) == allocated  # every allocation counted, the halves both
    assert sum(1 for row in chunked["allocations"] if row[2] == halved) >= 2


async def test_the_index_is_built_off_the_event_loop(postgres_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A million open items take seconds to index: on the service's event loop that would stall
    its consumers' heartbeats and /health for as long, so the index is built in a worker thread."""
    built_in: list[threading.Thread] = []

    class Recorded(OpenItems):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built_in.append(threading.current_thread())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(handlers, "OpenItems", Recorded)
    await imported(postgres_url, 7, monkeypatch)
    assert built_in and threading.main_thread() not in built_in


async def test_lines_are_decided_and_their_statements_built_off_the_event_loop(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding 100,000 lines and building their statements takes seconds of CPU: in a worker
    thread, while PostgreSQL runs the chunk before (and the service's consumers keep running)."""
    decided_in: list[threading.Thread] = []
    decide = handlers._decide

    def recorded(*args: Any) -> Any:
        decided_in.append(threading.current_thread())
        return decide(*args)

    monkeypatch.setattr(handlers, "_decide", recorded)
    assert (await imported(postgres_url, 7, monkeypatch))["lines"]
    assert len(decided_in) == 6 and threading.main_thread() not in decided_in  # 42 lines, 7 a chunk


async def test_a_chunk_that_fails_leaves_nothing_of_the_import(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third chunk's statement fails after two went in: the import raises that error and
    its one transaction leaves no line, allocation, matched amount or event behind."""
    sent: list[int] = []
    send = PreparedEvents.send

    async def failing(self: PreparedEvents, conn: Any) -> None:
        sent.append(len(sent))
        if len(sent) == 3:
            raise RuntimeError("the database went away")
        await send(self, conn)

    monkeypatch.setattr(PreparedEvents, "send", failing)
    monkeypatch.setattr(writes, "CHUNK", 7)
    async with loaded(postgres_url) as engine:
        with pytest.raises(RuntimeError, match="went away"):
            await run_import(engine)
        assert sent == [0, 1, 2]
        assert await stored(engine) == {key: [] for key in QUERIES}


async def test_a_failed_decision_waits_for_the_statement_in_flight_before_rolling_back(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding the second chunk fails while the first chunk's statement still runs: the
    transaction is rolled back only once that statement is over (never two statements at once
    on the connection), and nothing is kept."""
    finished: list[str] = []
    send = PreparedEvents.send
    decide = handlers._decide

    async def slow(self: PreparedEvents, conn: Any) -> None:
        await asyncio.sleep(0.3)
        await send(self, conn)
        finished.append("sent")

    def failing(*args: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 2:  # the first chunk's statement is still running (slow)
            raise ValueError("a bug in the matcher")
        return decide(*args)

    calls: list[int] = []
    monkeypatch.setattr(PreparedEvents, "send", slow)
    monkeypatch.setattr(handlers, "_decide", failing)
    monkeypatch.setattr(writes, "CHUNK", 7)
    async with loaded(postgres_url) as engine:
        with pytest.raises(ValueError, match="matcher"):
            await run_import(engine)
        assert finished == ["sent"]
        assert await stored(engine) == {key: [] for key in QUERIES}
