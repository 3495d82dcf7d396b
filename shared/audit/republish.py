"""Broker-loss recovery: move a service's relay checkpoint back so its history is published again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.eventstore import NOTIFY_CHANNEL, Position
from shared.outbox import load_checkpoint, save_checkpoint


@dataclass(frozen=True, slots=True)
class Republish:
    relay: str
    before: Position
    checkpoint: Position
    events: int


async def first_position_since(conn: AsyncConnection, since: datetime | None) -> Position | None:
    """The global position of the first event (in commit order) that occurred at/after ``since``."""
    row = (await conn.execute(
        text("SELECT tx_id::text, position FROM events "
             "WHERE CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since "
             "ORDER BY tx_id, position LIMIT 1"),
        {"since": since},
    )).first()
    return None if row is None else Position(int(row[0]), int(row[1]))


async def republish(conn: AsyncConnection, relay: str, since: datetime | None) -> Republish:
    """Reset ``relay``'s checkpoint to just before the first event at/after ``since`` (the start
    when None) inside the caller's transaction, and wake the running relays.

    Like ``OutboxRelay.reset``: the relay's advisory lock is taken first, so a batch being published
    cannot overwrite the reset with its own checkpoint. Every event from that position on in
    global order is published again, with its original event id (consumers' inboxes dedupe).
    """
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                       {"k": f"oms.relay.{relay}"})
    before = await load_checkpoint(conn, relay)
    first = await first_position_since(conn, since)
    if first is None:  # nothing to send: leave the checkpoint where it is
        return Republish(relay, before, before, 0)
    checkpoint = Position(first.tx_id, first.position - 1) if since is not None \
        else Position.start()
    await save_checkpoint(conn, relay, checkpoint)
    count = (await conn.execute(
        text("SELECT count(*) FROM events WHERE (tx_id, position) > (CAST(:tx AS xid8), :pos)"),
        {"tx": str(checkpoint.tx_id), "pos": checkpoint.position},
    )).scalar_one()
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return Republish(relay, before, checkpoint, int(count))
