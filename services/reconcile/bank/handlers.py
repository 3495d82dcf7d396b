"""Bank matching's application layer: keep open items from events, import and match statements."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconcile.bank import store
from services.reconcile.bank.index import OpenItems
from services.reconcile.bank.matching import Decision, MatchPolicy, OpenInvoice
from services.reconcile.bank.statement import BankLine, Format, RowError, parse_statement
from services.reconcile.bank.writes import (
    Decided,
    ImportWrites,
    announcements,
    chunks,
    stream_of,
)
from shared.clock import Clock
from shared.contract.envelope import Actor
from shared.eventbatch import PreparedEvents, stream_heads
from shared.eventstore import Meta, append
from shared.logging import get_logger

log = get_logger(__name__)
@dataclass
class ImportResult:
    rows_read: int = 0
    imported: int = 0
    already_imported: int = 0
    matched: int = 0
    flagged: int = 0
    unmatched: int = 0
    errors: list[RowError] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "imported": self.imported,
                "already_imported": self.already_imported, "refused": len(self.errors),
                "matched": self.matched, "flagged": self.flagged, "unmatched": self.unmatched,
                "errors": [e.describe() for e in self.errors], "decisions": self.decisions}


async def indexed(invoices: list[OpenInvoice], policy: MatchPolicy) -> OpenItems:
    """The open items' index, built in a worker thread: a million invoices take seconds of CPU,
    which on the event loop would stall the service's consumers (their heartbeats: a rebalance)
    and its /health for as long."""
    return await asyncio.to_thread(OpenItems, invoices, policy)


async def import_statement(engine: AsyncEngine, clock: Clock, raw: bytes, fmt: Format,
                           policy: MatchPolicy, actor: Actor) -> ImportResult:
    """Parse, refuse bad rows, skip lines already imported, match the new ones, all in one transaction.

    Raises statement.StatementError when the file as a whole cannot be read.
    """
    statement = parse_statement(raw, fmt)
    result = ImportResult(rows_read=len(statement.lines) + statement.duplicates_in_file
                          + len({e.line for e in statement.errors}),
                          already_imported=statement.duplicates_in_file,
                          errors=list(statement.errors))
    writes = ImportWrites(fmt, actor, f"bank-import-{uuid.uuid4()}")
    async with engine.begin() as conn:
        # one import at a time: matching reads and reduces the same open invoices
        await store.lock_bank_lines(conn)
        known = await store.imported_hashes(conn, [line.transaction_id for line in statement.lines])
        # indexed once per statement, each decision applied to it: O(items + lines), not their product
        invoices = await indexed(await store.known_invoices(conn), policy)
        new: list[BankLine] = []
        for line in sorted(statement.lines, key=lambda x: (x.booked_on, x.line)):
            previous = known.get(line.transaction_id)
            if previous == line.content_hash:
                result.already_imported += 1
            elif previous is not None:
                result.errors.append(RowError(line.line, "transaction_id",
                                              f"{line.transaction_id!r} was imported before with "
                                              "different content (conflict)"))
            else:
                new.append(line)
        heads = await stream_heads(conn, [stream_of(line) for line in new])
        await _match_and_write(conn, invoices, chunks(new), clock,
                               partial(writes.prepared, heads=heads), result)
    result.errors.sort(key=lambda e: e.line)
    log.info("bank statement imported", imported=result.imported, matched=result.matched,
             unmatched=result.unmatched, refused=len(result.errors))
    return result


def _decide(invoices: OpenItems, lines: list[BankLine], clock: Clock,
            prepare: Callable[[list[Decided]], PreparedEvents]
            ) -> tuple[list[Decided], PreparedEvents]:
    """In a worker thread: each line decided and its decision applied to the index, in order,
    then the chunk's statement built."""
    decided: list[Decided] = []
    for line in lines:
        decision = invoices.decide(line)
        invoices.apply(decision)
        decided.append((line, decision, clock.now()))
    return decided, prepare(decided)


async def _match_and_write(conn: AsyncConnection, invoices: OpenItems, lines: list[list[BankLine]],
                           clock: Clock, prepare: Callable[[list[Decided]], PreparedEvents],
                           result: ImportResult) -> None:
    """Chunk after chunk: decided and its statement built in a worker thread while PostgreSQL
    runs the chunk before's (a second core): 100,000 lines against a million open items went
    from 35 s to under 30, and the event loop stays free for the service's consumers meanwhile.
    The statements run one after another on the one connection, in the lines' order, as if
    written in turn; a failure leaves the transaction only once the statement in flight is over."""
    writing: asyncio.Task[None] | None = None
    try:
        for chunk in lines:
            decided, prepared = await asyncio.to_thread(_decide, invoices, chunk, clock, prepare)
            if writing is not None:
                await writing
            writing = asyncio.create_task(prepared.send(conn))
            for line, decision, _ in decided:
                result.imported += 1
                result.matched += decision.matched
                result.flagged += decision.flagged
                result.unmatched += not decision.matched
                result.decisions.append({"transaction_id": line.transaction_id, "line": line.line,
                                         "matched": decision.matched, "rule": decision.rule,
                                         "flagged": decision.flagged, "reason": decision.reason})
        if writing is not None:
            await writing
    except BaseException:
        if writing is not None:  # never roll back under a statement still running
            await asyncio.gather(writing, return_exceptions=True)
        raise


async def rematch(engine: AsyncEngine, clock: Clock, policy: MatchPolicy, actor: Actor) -> dict[str, Any]:
    """Try the unmatched money-in lines again (invoices issued after the money arrived).

    Lines still unmatched keep their first decision and get no new event.
    """
    meta = Meta(correlation_id=f"bank-rematch-{uuid.uuid4()}", actor=actor, causation_id="bank:rematch")
    matched: list[dict[str, Any]] = []
    async with engine.begin() as conn:
        await store.lock_bank_lines(conn)
        waiting = await store.unmatched_receipts(conn)
        invoices = await indexed(await store.known_invoices(conn), policy)
        for line in waiting:
            decision = invoices.decide(line)
            if not decision.matched:
                continue
            invoices.apply(decision)
            await store.record_decision(conn, line, decision)
            await announce(conn, line, decision, clock, meta)
            matched.append({"transaction_id": line.transaction_id, "rule": decision.rule,
                            "flagged": decision.flagged, "reason": decision.reason})
    return {"tried": len(waiting), "matched": len(matched), "decisions": matched}


async def announce(conn: AsyncConnection, line: BankLine, decision: Decision, clock: Clock,
                   meta: Meta) -> None:
    """bank_line.matched per invoice (key = its order id), else one bank_line.unmatched."""
    for payload, key in announcements(line, decision):
        await append(conn, stream_of(line), None, [payload], meta=meta, clock=clock, key=key)


def policy_of(window_days: int | None, tolerance: Decimal | None, default: MatchPolicy) -> MatchPolicy:
    return MatchPolicy(window_days=default.window_days if window_days is None else window_days,
                       tolerance=default.tolerance if tolerance is None else tolerance)
