"""A statement import's writes, gathered and sent a chunk of lines at a time.

Line by line the import made five round trips per matched line (the line, its allocation, the
invoice's matched amount, the event stream's head, the event): 25 s for 10,000 lines against
100,000 open items, where matching them in memory takes a fraction of a second. Now each chunk's
lines, allocations, matched amounts and events go in one statement (``shared.rowdocs``,
``shared.eventbatch``), the lines' stream heads read once for the whole statement beforehand
(``handlers``); the rows, their order (and
so the allocation ids and the events' positions) and the events' hash chains are what the line by
line writes made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.reconcile.bank.matching import Decision
from services.reconcile.bank.statement import BankLine
from services.reconcile.bank.store import bank_allocations, bank_lines
from shared.contract.bank_events import BankLineMatched, BankLineUnmatched
from shared.contract.envelope import Actor
from shared.contract.payloads import Payload
from shared.eventbatch import PendingEvents, PreparedEvents
from shared.eventstore import Head, Meta
from shared.rowdocs import RowsStatement, insert_rows

CHUNK = 1000  # lines per statement

_LINES = insert_rows(bank_lines, [c.name for c in bank_lines.c])
_ALLOCATIONS = insert_rows(bank_allocations, ["transaction_id", "voucher_number", "order_id",
                                              "applied"])


# ``matched = matched + applied`` of each invoice named once (the chunk's sum for it).
_MATCHED = RowsStatement(text(
    "UPDATE bank_invoices AS t SET matched = t.matched + r.applied FROM ROWS FROM "
    "(jsonb_to_recordset(CAST(:rows AS jsonb)) AS (voucher_number text, applied numeric)) AS r "
    "WHERE t.voucher_number = r.voucher_number"), ("voucher_number", "applied"),
    ("voucher_number",))


def stream_of(line: BankLine) -> str:
    return f"bank-line:{line.transaction_id}"


def announcements(line: BankLine, decision: Decision) -> list[tuple[Payload, str]]:
    """bank_line.matched per invoice (key = its order id), else one bank_line.unmatched (key =
    the transaction id): each with the key it is published under."""
    common: dict[str, Any] = {"transaction_id": line.transaction_id, "bank_amount": line.amount,
                              "currency": line.currency, "booked_on": line.booked_on,
                              "tolerance": decision.tolerance, "window_days": decision.window_days,
                              "flagged": decision.flagged}
    if not decision.matched:
        return [(BankLineUnmatched(**common, reason=decision.reason,
                                   candidates=list(decision.candidates)), line.transaction_id)]
    return [(BankLineMatched(**common, order_id=a.order_id, voucher_number=a.voucher_number,
                             applied=a.applied, rule=decision.rule, score=decision.score,
                             difference=decision.difference, reason=decision.reason), a.order_id)
            for a in decision.allocations]


def line_row(line: BankLine, decision: Decision, *, fmt: str, now: datetime,
             imported_by: str) -> dict[str, Any]:
    return {"transaction_id": line.transaction_id, "booked_on": line.booked_on,
            "amount": line.amount, "currency": line.currency, "counterparty": line.counterparty,
            "memo": line.memo, "content_hash": line.content_hash, "source_format": fmt,
            "imported_at": now, "imported_by": imported_by,
            "status": "matched" if decision.matched else "unmatched", "rule": decision.rule,
            "score": decision.score, "tolerance": decision.tolerance,
            "window_days": decision.window_days, "difference": decision.difference,
            "flagged": decision.flagged, "reason": decision.reason,
            "candidates": list(decision.candidates)}


Decided = tuple[BankLine, Decision, datetime]  # a line, what was decided for it and when


def chunks(lines: list[BankLine]) -> list[list[BankLine]]:
    """The lines, ``CHUNK`` at a time (in order)."""
    return [lines[start:start + CHUNK] for start in range(0, len(lines), CHUNK)]


@dataclass(frozen=True)
class ImportWrites:
    """How one import writes its decided lines, a chunk at a time: ``prepared`` builds the
    chunk's one statement (no connection needed: a worker thread may), ``PreparedEvents.send``
    runs it."""

    fmt: str
    actor: Actor
    correlation_id: str

    def prepared(self, chunk: Sequence[Decided], heads: Mapping[str, Head]) -> PreparedEvents:
        """The chunk's lines, allocations, matched amounts and events; ``heads``: each line's
        event stream's head (``stream_heads``, read before)."""
        events = PendingEvents()
        lines: list[dict[str, Any]] = []
        allocations: list[dict[str, Any]] = []
        applied: dict[str, Decimal] = defaultdict(Decimal)
        for line, decision, now in chunk:
            lines.append(line_row(line, decision, fmt=self.fmt, now=now,
                                  imported_by=self.actor.id))
            for a in decision.allocations:
                allocations.append({"transaction_id": line.transaction_id,
                                    "voucher_number": a.voucher_number, "order_id": a.order_id,
                                    "applied": a.applied})
                applied[a.voucher_number] += a.applied
            head: Head = heads[stream_of(line)]
            meta = Meta(correlation_id=self.correlation_id, actor=self.actor,
                        causation_id=f"bank:{line.transaction_id}")
            for payload, key in announcements(line, decision):
                appended = events.add(stream_of(line), [payload], meta=meta, key=key, now=now,
                                      head=head)
                assert appended.head is not None
                head = appended.head
        return events.prepared(_LINES.write(lines), _ALLOCATIONS.write(allocations),
                               _MATCHED.write([{"voucher_number": voucher, "applied": amount}
                                               for voucher, amount in applied.items()]))
