"""Fingerprints of placed orders (phone + goods), to find likely cross-channel duplicates fast.

Two submissions of one purchase through two storefronts may be handled at the same moment by two
instances of the order service (their keys put them on different partitions). Each would look
for the other before either had committed, find nothing, and neither order would be flagged. So
looking a fingerprint up takes its lock (``lock_key``, a transaction-level advisory lock, as the
orders' stream locks) until the transaction ends: the second looks only once the first has
committed its fingerprint, and finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.domain.duplicates import DuplicateSuspicion, likely_duplicates
from shared.pipeline import Query, run
from shared.rowdocs import Write, excluded, upsert_rows
from shared.schemaupgrade import create_or_upgrade
from shared.streamlocks import lock_streams

metadata = MetaData()

order_fingerprints = Table(
    "order_fingerprints",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("channel_order_id", Text, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Index("order_fingerprints_recent", "fingerprint", "submitted_at"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)


def lock_key(fingerprint: str) -> str:
    """The advisory lock a look-up of ``fingerprint`` takes (beside the orders' stream locks,
    whose keys are order ids: the prefix keeps the two apart)."""
    return f"fingerprint:{fingerprint}"


# Again: no effect; after an amendment: the new goods (the order's channel and instant stay).
_RECORD = upsert_rows(order_fingerprints, [c.name for c in order_fingerprints.c], ["order_id"],
                      excluded("fingerprint"))
_FORGET = order_fingerprints.delete().where(
    order_fingerprints.c.order_id == bindparam("order_id", type_=Text))


@dataclass
class BatchFingerprints:
    """A consumer batch's view of the table: the rows of the marks its submissions will likely
    ask for (read in one query at its start, others read on first use) and its own changes,
    written at its end. What it answers equals what the table would answer after each change."""

    # fingerprint -> (the instants read, from and until), the rows submitted between them;
    # the batch holds the lock (``lock_key``) of every fingerprint it read
    read: dict[str, tuple[datetime, datetime, list[DuplicateSuspicion]]] = field(
        default_factory=dict)
    # order id -> (fingerprint, row) as the batch left it, or None once forgotten
    changed: dict[str, tuple[str, DuplicateSuspicion] | None] = field(default_factory=dict)

    def covers(self, fingerprint: str, since: datetime, until: datetime) -> bool:
        known = self.read.get(fingerprint)
        return known is not None and known[0] <= since and until <= known[1]

    def candidates(self, fingerprint: str) -> list[DuplicateSuspicion]:
        rows = {c.order_id: c for c in self.read[fingerprint][2] if c.order_id not in self.changed}
        for order_id, change in self.changed.items():
            if change is not None and change[0] == fingerprint:
                rows[order_id] = change[1]
        return list(rows.values())


# Set only while a batch's message is being handled (as ``store.BATCH``).
BATCH: ContextVar[BatchFingerprints | None] = ContextVar("order_batch_fingerprints", default=None)


async def record(conn: AsyncConnection, order_id: str, fingerprint: str, channel: str,
                 channel_order_id: str, submitted_at: datetime) -> None:
    """Remember an order's fingerprint (again: no effect; after an amendment: the new goods)."""
    batch = BATCH.get()
    if batch is None:
        await _RECORD.execute(conn, [_row(order_id, fingerprint, channel, channel_order_id,
                                          submitted_at)])
        return
    earlier = batch.changed.get(order_id)
    if earlier is not None:  # an upsert keeps the first row's channel and instant
        channel, channel_order_id, submitted_at = (earlier[1].channel, earlier[1].channel_order_id,
                                                   earlier[1].submitted_at)
    batch.changed[order_id] = (fingerprint, DuplicateSuspicion(order_id, channel, channel_order_id,
                                                               submitted_at))


def _row(order_id: str, fingerprint: str, channel: str, channel_order_id: str,
         submitted_at: datetime) -> dict[str, Any]:
    return {"order_id": order_id, "fingerprint": fingerprint, "channel": channel,
            "channel_order_id": channel_order_id, "submitted_at": submitted_at}


async def forget(conn: AsyncConnection, order_id: str) -> None:
    """A cancelled order no longer makes later ones suspicious."""
    batch = BATCH.get()
    if batch is None:
        await conn.execute(_FORGET, {"order_id": order_id})
    else:
        batch.changed[order_id] = None


async def _read(conn: AsyncConnection, fingerprints: Sequence[str], since: datetime,
                until: datetime) -> list[Any]:
    """The rows of ``fingerprints`` submitted between ``since`` and ``until``."""
    return await run(conn, _read_query(fingerprints, since, until))


def _read_query(fingerprints: Sequence[str], since: datetime, until: datetime
                ) -> Query[list[Any]]:
    return Query(_READ, {"fingerprints": list(fingerprints), "since": since, "until": until}, list)


_FP = order_fingerprints.c
_READ = (select(_FP.fingerprint, _FP.order_id, _FP.channel, _FP.channel_order_id, _FP.submitted_at)
         .where(_FP.fingerprint == any_(bindparam("fingerprints", type_=ARRAY(Text))),
                _FP.submitted_at.between(bindparam("since", type_=DateTime(timezone=True)),
                                         bindparam("until", type_=DateTime(timezone=True))))
         .order_by(_FP.submitted_at, _FP.order_id))


def _suspicion(row: Any) -> DuplicateSuspicion:
    return DuplicateSuspicion(row.order_id, row.channel, row.channel_order_id, row.submitted_at)


def batch_query(marks: Sequence[tuple[str, datetime]], window: timedelta
                ) -> Query[BatchFingerprints]:
    """The batch's view, with the rows of ``marks`` (fingerprint, submitted at; not empty) read
    in one query (to send with others: ``shared.pipeline``), after the locks of their
    fingerprints (``lock_key``), which the caller sends before it."""
    since = min(at for _, at in marks) - window
    until = max(at for _, at in marks) + window
    fingerprints = sorted({mark for mark, _ in marks})
    read = _read_query(fingerprints, since, until)

    def view(rows: Sequence[Any]) -> BatchFingerprints:
        batch = BatchFingerprints()
        batch.read = {mark: (since, until, []) for mark in fingerprints}
        for row in rows:
            batch.read[row.fingerprint][2].append(_suspicion(row))
        return batch

    return Query(read.statement, read.params, view)


async def save_batch(conn: AsyncConnection, batch: BatchFingerprints) -> Write | None:
    """The batch's changes: the deletes (of cancelled orders) done, the upserts returned for
    the batch's one statement of writes."""
    kept: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    for order_id, change in batch.changed.items():
        if change is None:
            gone.append({"order_id": order_id})
        else:
            mark, row = change
            kept.append(_row(order_id, mark, row.channel, row.channel_order_id, row.submitted_at))
    if gone:
        await conn.execute(_FORGET, gone[0] if len(gone) == 1 else gone)
    return _RECORD.write(kept)


async def find_likely_duplicates(conn: AsyncConnection, fingerprint: str, submitted_at: datetime,
                                 window: timedelta, exclude_order_id: str) -> list[DuplicateSuspicion]:
    """Orders with the same fingerprint submitted within ``window`` either side, oldest first."""
    since, until = submitted_at - window, submitted_at + window
    batch = BATCH.get()
    if batch is None:  # the order itself is left out below, with the rows beyond the window
        await lock_streams(conn, [lock_key(fingerprint)])
        candidates = [_suspicion(row) for row in await _read(conn, [fingerprint], since, until)]
    else:
        if not batch.covers(fingerprint, since, until):  # not guessed at the batch's start
            if fingerprint in batch.read:  # read (and so locked) for a narrower window
                since, until = min(since, batch.read[fingerprint][0]), max(
                    until, batch.read[fingerprint][1])
            else:  # its lock first, as the batch's start took those it guessed
                await lock_streams(conn, [lock_key(fingerprint)])
            batch.read[fingerprint] = (since, until, [
                _suspicion(row) for row in await _read(conn, [fingerprint], since, until)])
        candidates = batch.candidates(fingerprint)
    return likely_duplicates(candidates, submitted_at=submitted_at, window=window,
                             exclude_order_id=exclude_order_id)
