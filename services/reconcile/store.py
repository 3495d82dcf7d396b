"""Reconcile's own tables: one fact sheet per order with its findings, and the discrepancies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.bank import store as bank_store
from services.reconcile.domain import (
    Assessment,
    OrderFacts,
    describe,
    from_document,
    to_document,
)
from shared import lagshare
from shared.contract.payloads import DiscrepancyDetected, DiscrepancyResolved
from shared.rowdocs import update_rows
from shared.schemaupgrade import create_or_upgrade

metadata = MetaData()

# A new table name (the walking skeleton's ``order_facts`` had one column per fact): an old
# database keeps its old table untouched and this one is built from the events.
fact_sheets = Table(
    "order_fact_sheets",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("facts", JSONB, nullable=False, default=dict),  # domain.to_document
    # the assessment, recomputed on every event of the order (and by the grace-period job)
    Column("status", Text, nullable=False, default="pending"),
    Column("reasons", JSONB, nullable=False, default=list),
    Column("findings", JSONB, nullable=False, default=list),  # [{kind, reason, expected, ...}]
    Column("finding_since", JSONB, nullable=False, default=dict),  # {kind: ISO instant}
    # earliest start of a disagreement not raised yet: the job looks once it is past the grace
    Column("unraised_since", DateTime(timezone=True)),
    Column("status_since", DateTime(timezone=True), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # How many times the sheet was saved: a sheet kept in memory since it was saved is current
    # while this still says so (a write counter: left out of a replay's comparison).
    Column("revision", BigInteger, nullable=False, server_default="0"),
    Index("order_fact_sheets_status_since", "status", "status_since"),
    Index("order_fact_sheets_unraised", "unraised_since",
          postgresql_where=text("unraised_since IS NOT NULL")),
)

discrepancies = Table(
    "discrepancies",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("expected", Text, nullable=False),
    Column("actual", Text, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("detected_event_id", Uuid, nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_event_id", Uuid),
    # at most one open discrepancy per order and kind
    Index("discrepancies_open_kind", "order_id", "kind", unique=True,
          postgresql_where=text("resolved_at IS NULL")),
    Index("discrepancies_detected", "detected_at"),
)


async def create_schema(conn: AsyncConnection) -> None:
    # a sheet table made before the revision column existed gains it (0: every sheet unsaved)
    await create_or_upgrade(conn, metadata)
    await lagshare.ensure_schema(conn)  # how far behind each instance is
    await bank_store.create_schema(conn)  # bank matching's and the reports' tables


# ---- fact sheets -------------------------------------------------------------------------------


# Creating the missing sheets and locking the existing ones writes nothing for the existing:
# ``DO UPDATE ... WHERE false`` locks the conflicting rows without a new row version (an upsert
# that "updated" them wrote every sheet's whole document once more per batch: about half of the
# reconcile database's writes). The rows are read by a second statement, whose snapshot comes
# after the locks: one taken with the insert could miss a sheet another transaction committed
# while this one waited for its lock, or show it as it was before that transaction.
_CLAIM_SHEETS = text(
    "INSERT INTO order_fact_sheets AS s (order_id, facts, status, reasons, findings, finding_since,"
    " status_since, first_seen_at, updated_at)"
    " SELECT o, '{}', 'pending', '[]', '[]', '{}', :now, :now, :now"
    " FROM unnest(CAST(:orders AS text[])) AS o ORDER BY o"
    " ON CONFLICT (order_id) DO UPDATE SET order_id = s.order_id WHERE false"
    " RETURNING s.order_id"
)
# A sheet whose revision matches the one kept in memory comes without its facts (``kept``).
_READ_SHEETS = text(
    "SELECT s.order_id, s.status, s.status_since, s.first_seen_at, s.finding_since,"
    " s.unraised_since, s.revision, coalesce(k.revision = s.revision, false) AS kept,"
    " CASE WHEN k.revision = s.revision THEN NULL ELSE s.facts END AS facts,"
    " s.order_id = ANY(CAST(:inserted AS text[])) AS inserted,"
    " ARRAY(SELECT d.kind FROM discrepancies d"
    " WHERE d.order_id = s.order_id AND d.resolved_at IS NULL) AS open_kinds"
    " FROM order_fact_sheets s LEFT JOIN unnest(CAST(:kept_orders AS text[]),"
    " CAST(:kept_revisions AS bigint[])) AS k(order_id, revision) ON k.order_id = s.order_id"
    " WHERE s.order_id = ANY(CAST(:orders AS text[])) ORDER BY s.order_id"
)


async def lock_sheet(conn: AsyncConnection, order_id: str, now: datetime) -> Any:
    """The order's row (created when new) with its open discrepancy kinds (``open_kinds``),
    locked until the transaction ends.

    Events of one order arrive on four topics and may be handled by different instances (and the
    grace-period job) at the same time; the row lock makes their read-modify-write steps take turns.
    """
    (row,) = await lock_sheets(conn, [order_id], now)
    return row


async def lock_sheets(conn: AsyncConnection, order_ids: Sequence[str], now: datetime,
                      kept: Mapping[str, int] | None = None) -> list[Any]:
    """``lock_sheet`` for many orders in two statements (rows locked in order-id order).
    ``kept``: the revision of each sheet held in memory; a row still at it comes without its
    facts (``row.kept``)."""
    if not order_ids:
        return []
    orders = sorted(set(order_ids))
    inserted = list((await conn.execute(_CLAIM_SHEETS, {"orders": orders, "now": now})).scalars())
    kept = kept or {}  # (a kept order outside ``orders`` joins no row)
    return list(await conn.execute(_READ_SHEETS, {
        "orders": orders, "inserted": inserted, "kept_orders": list(kept),
        "kept_revisions": list(kept.values())}))


_SHEET_FREE = text("SELECT 1 FROM order_fact_sheets WHERE order_id = :o FOR UPDATE SKIP LOCKED")


async def sheet_free(conn: AsyncConnection, order_id: str) -> bool:
    """Lock the order's sheet unless another transaction holds it (False then: it is busy)."""
    return (await conn.execute(_SHEET_FREE, {"o": order_id})).first() is not None


def facts_from_row(row: Any) -> OrderFacts:
    return from_document(row.order_id, row.facts or {})


def finding_since_from_row(row: Any) -> dict[str, datetime]:
    return {kind: datetime.fromisoformat(at) for kind, at in (row.finding_since or {}).items()}


@dataclass(slots=True)
class Sheet:
    """A locked fact sheet being worked on in memory (one event or a batch), saved at the end."""

    facts: OrderFacts
    status: str
    status_since: datetime
    first_seen_at: datetime
    finding_since: dict[str, datetime]
    unraised_since: datetime | None
    open_kinds: set[str]
    fresh: bool  # created by this transaction and no event applied yet
    assessment: Assessment | None = None
    updated_at: datetime | None = None
    revision: int = 0  # as read; save_sheets counts it up

    @classmethod
    def from_row(cls, row: Any, kept: Mapping[str, tuple[int, OrderFacts]] | None = None) -> Sheet:
        """The row's sheet; its facts from ``kept`` (revision, facts) when the row says so."""
        facts = kept[row.order_id][1] if row.kept and kept is not None else facts_from_row(row)
        return cls(facts, row.status, row.status_since, row.first_seen_at,
                   finding_since_from_row(row), row.unraised_since, set(row.open_kinds),
                   bool(row.inserted), revision=int(row.revision))

    def begin(self, now: datetime) -> None:
        """Before an event is applied: a new sheet starts when its first event is handled."""
        if self.fresh:
            self.fresh = False
            self.status, self.status_since, self.first_seen_at = "pending", now, now

    def settled(self, assessment: Assessment, finding_since: dict[str, datetime],
                unraised_since: datetime | None, status_since: datetime, now: datetime) -> None:
        self.assessment, self.finding_since, self.unraised_since = assessment, finding_since, \
            unraised_since
        self.status, self.status_since, self.updated_at = assessment.status, status_since, now

    @property
    def changed(self) -> bool:
        return self.assessment is not None


# Every settled sheet of a batch in one statement with one parameter (an executemany of the
# same UPDATE cost the service a fifth of its CPU in psycopg's per-row work under bench 3).
_SAVE_SHEETS = update_rows(fact_sheets, "order_id", [
    "facts", "status", "reasons", "findings", "finding_since", "unraised_since", "status_since",
    "first_seen_at", "updated_at", "revision"])


def _saved(sheet: Sheet) -> dict[str, Any]:
    assessment = sheet.assessment
    assert assessment is not None, "a sheet is saved only after it was settled"
    return {
        "order_id": sheet.facts.order_id,
        "facts": to_document(sheet.facts),
        "status": assessment.status,
        "reasons": list(assessment.reasons),
        "findings": [{"kind": f.kind, "reason": f.reason, "expected": f.expected,
                      "actual": f.actual, "waiting": f.waiting,
                      "since": sheet.finding_since[f.kind].isoformat()}
                     for f in assessment.findings],
        "finding_since": {kind: at.isoformat() for kind, at in sheet.finding_since.items()},
        "unraised_since": sheet.unraised_since,
        "status_since": sheet.status_since,
        "first_seen_at": sheet.first_seen_at,
        "updated_at": sheet.updated_at,
        "revision": sheet.revision + 1,
    }


async def save_sheets(conn: AsyncConnection, sheets: Sequence[Sheet]) -> None:
    """Write the settled sheets (one statement, one parameter, however many), each with its
    revision counted up (we hold its row lock: nobody else counts in between)."""
    changed = [sheet for sheet in sheets if sheet.changed]
    await _SAVE_SHEETS.execute(conn, [_saved(sheet) for sheet in changed])
    for sheet in changed:
        sheet.revision += 1


async def orders_due(conn: AsyncConnection, found_before: datetime, limit: int = 1000) -> list[str]:
    """Orders with a disagreement found before ``found_before`` that is not raised yet."""
    result = await conn.execute(
        select(fact_sheets.c.order_id)
        .where(fact_sheets.c.unraised_since <= found_before)
        .order_by(fact_sheets.c.unraised_since)
        .limit(limit)
    )
    return [row.order_id for row in result]


def sheet(row: Any, open_discrepancies: list[dict[str, Any]]) -> dict[str, Any]:
    """The fact sheet as JSON for people: amounts as decimal strings, instants in ISO 8601."""
    return {
        "order_id": row.order_id,
        "status": row.status,
        "reasons": list(row.reasons),
        "findings": list(row.findings),
        "status_since": row.status_since.isoformat(),
        "facts": describe(facts_from_row(row)),
        "open_discrepancies": open_discrepancies,
        "first_seen_at": row.first_seen_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def fact_sheet(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(fact_sheets).where(fact_sheets.c.order_id == order_id))).first()
    if row is None:
        return None
    return sheet(row, await list_discrepancies(conn, open_only=True, order_id=order_id))


# ---- discrepancies -----------------------------------------------------------------------------


async def record_detected(conn: AsyncConnection, detected: DiscrepancyDetected, *, reason: str,
                          event_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        insert(discrepancies).values(
            order_id=detected.order_id, kind=detected.kind, reason=reason,
            expected=detected.expected, actual=detected.actual, since=detected.since,
            detected_at=now, detected_event_id=event_id,
        )
    )


async def record_resolved(conn: AsyncConnection, resolved: DiscrepancyResolved, *,
                          event_id: uuid.UUID) -> None:
    await conn.execute(
        discrepancies.update()
        .where(discrepancies.c.order_id == resolved.order_id, discrepancies.c.kind == resolved.kind,
               discrepancies.c.resolved_at.is_(None))
        .values(resolved_at=resolved.resolved_at, resolved_event_id=event_id)
    )


def _discrepancy(row: Any) -> dict[str, Any]:
    return {
        "order_id": row.order_id, "kind": row.kind, "reason": row.reason,
        "expected": row.expected, "actual": row.actual, "since": row.since.isoformat(),
        "detected_at": row.detected_at.isoformat(),
        "resolved_at": None if row.resolved_at is None else row.resolved_at.isoformat(),
        "open": row.resolved_at is None,
    }


async def list_discrepancies(conn: AsyncConnection, *, open_only: bool = True,
                             order_id: str | None = None, kind: str | None = None,
                             limit: int = 500) -> list[dict[str, Any]]:
    query = select(discrepancies).order_by(discrepancies.c.detected_at, discrepancies.c.id).limit(limit)
    if open_only:
        query = query.where(discrepancies.c.resolved_at.is_(None))
    if order_id is not None:
        query = query.where(discrepancies.c.order_id == order_id)
    if kind is not None:
        query = query.where(discrepancies.c.kind == kind)
    return [_discrepancy(row) for row in await conn.execute(query)]


# ---- summary -----------------------------------------------------------------------------------


async def summary(conn: AsyncConnection, pending_limit: int = 50) -> dict[str, Any]:
    counts = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(fact_sheets.c.status == "consistent"),
                func.count().filter(fact_sheets.c.status == "pending"),
            )
        )
    ).one()
    pending = await conn.execute(
        select(fact_sheets.c.order_id, fact_sheets.c.reasons)
        .where(fact_sheets.c.status == "pending")
        .order_by(fact_sheets.c.status_since, fact_sheets.c.order_id)
        .limit(pending_limit)
    )
    by_kind = await conn.execute(
        select(discrepancies.c.kind, func.count())
        .where(discrepancies.c.resolved_at.is_(None))
        .group_by(discrepancies.c.kind)
        .order_by(discrepancies.c.kind)
    )
    open_by_kind = {row[0]: int(row[1]) for row in by_kind}
    return {
        "orders": int(counts[0]),
        "consistent": int(counts[1]),
        "pending": int(counts[2]),
        "pending_orders": [{"order_id": r.order_id, "reasons": list(r.reasons)} for r in pending],
        "open_discrepancies": sum(open_by_kind.values()),
        "by_kind": open_by_kind,
    }
