"""Fingerprints of placed orders (phone + goods), to find likely cross-channel duplicates fast."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, Index, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.domain.duplicates import DuplicateSuspicion, likely_duplicates

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
    await conn.run_sync(metadata.create_all)


async def record(conn: AsyncConnection, order_id: str, fingerprint: str, channel: str,
                 channel_order_id: str, submitted_at: datetime) -> None:
    """Remember an order's fingerprint (again: no effect; after an amendment: the new goods)."""
    statement = insert(order_fingerprints).values(
        order_id=order_id, fingerprint=fingerprint, channel=channel,
        channel_order_id=channel_order_id, submitted_at=submitted_at)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=[order_fingerprints.c.order_id],
        set_={"fingerprint": statement.excluded.fingerprint}))


async def forget(conn: AsyncConnection, order_id: str) -> None:
    """A cancelled order no longer makes later ones suspicious."""
    await conn.execute(order_fingerprints.delete().where(order_fingerprints.c.order_id == order_id))


async def find_likely_duplicates(conn: AsyncConnection, fingerprint: str, submitted_at: datetime,
                                 window: timedelta, exclude_order_id: str) -> list[DuplicateSuspicion]:
    """Orders with the same fingerprint submitted within ``window`` either side, oldest first."""
    fp = order_fingerprints.c
    rows = await conn.execute(
        select(fp.order_id, fp.channel, fp.channel_order_id, fp.submitted_at)
        .where(fp.fingerprint == fingerprint,
               fp.submitted_at.between(submitted_at - window, submitted_at + window),
               fp.order_id != exclude_order_id)
        .order_by(fp.submitted_at, fp.order_id))
    candidates = [DuplicateSuspicion(r.order_id, r.channel, r.channel_order_id, r.submitted_at)
                  for r in rows]
    return likely_duplicates(candidates, submitted_at=submitted_at, window=window,
                             exclude_order_id=exclude_order_id)
