"""The outbox relay: publishes committed events from the event store to Kafka, at least once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.commitorder import COMMITTED_AFTER, held_back_query
from shared.db import run_script
from shared.eventstore import NOTIFY_CHANNEL, Position
from shared.kafka import OutgoingRecord, Publisher
from shared.logging import get_logger
from shared.metrics import METRICS
from shared.pipeline import Query, pipelined, run

log = get_logger(__name__)

HELD_BACK_RETRY_SECONDS = 0.1

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name        text        PRIMARY KEY,
    tx_id       xid8        NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
"""


async def ensure_schema(conn: AsyncConnection) -> None:
    await run_script(conn, SCHEMA_SQL)


async def load_checkpoint(conn: AsyncConnection, name: str) -> Position:
    return await run(conn, _load_checkpoint(name))


def _load_checkpoint(name: str) -> Query[Position]:
    def position(rows: Sequence[Any]) -> Position:
        return Position(int(rows[0][0]), int(rows[0][1])) if rows else Position.start()

    return Query(_CHECKPOINT, {"n": name}, position)


_CHECKPOINT = text("SELECT tx_id::text, position FROM relay_checkpoints WHERE name = :n")
_SAVE_CHECKPOINT = text(
    "INSERT INTO relay_checkpoints (name, tx_id, position) "
    "VALUES (:n, CAST(:tx AS xid8), :pos) "
    "ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, "
    "position = EXCLUDED.position, updated_at = now()"
)


async def save_checkpoint(conn: AsyncConnection, name: str, position: Position) -> None:
    await run(conn, _save_checkpoint(name, position))


def _save_checkpoint(name: str, position: Position) -> Query[None]:
    return Query(_SAVE_CHECKPOINT, {"n": name, "tx": str(position.tx_id),
                                    "pos": position.position})


@dataclass(frozen=True, slots=True)
class Publishable:
    """A committed event as the relay sends it: ``value`` is its envelope's JSON, spelt by
    PostgreSQL from the row (the relay never decodes the payload only to encode it again)."""

    position: Position
    key: str
    event_type: str
    event_id: uuid.UUID
    correlation_id: str
    value: bytes


# An event row's envelope as the relay sends it: every field, as EventEnvelope.from_json reads
# them (occurred_at in ISO 8601 with its offset, the payload and actor documents as stored).
ENVELOPE_JSON = (
    "json_build_object('event_id', event_id, 'event_type', event_type, "
    "'schema_version', schema_version, 'stream_id', stream_id, 'stream_version', stream_version, "
    "'occurred_at', occurred_at, 'correlation_id', correlation_id, 'causation_id', causation_id, "
    "'actor', actor, 'payload', payload)::text"
)
# ``read_committed_after``'s rows after the relay's stored checkpoint (read in the statement, so
# that it can go with the lock and the checkpoint's own read in one round trip, after the lock
# is granted; no checkpoint: from the start).
_PUBLISHABLE = text(
    "SELECT position, tx_id::text AS tx_id_text, message_key, event_type, event_id, "
    f"correlation_id, {ENVELOPE_JSON} AS value " + COMMITTED_AFTER.replace(
        "(CAST(:tx AS xid8), :pos)",
        "(coalesce((SELECT tx_id FROM relay_checkpoints WHERE name = :n), '0'::xid8), "
        "coalesce((SELECT position FROM relay_checkpoints WHERE name = :n), 0))"))


def publishable_query(relay: str, limit: int) -> Query[list[Publishable]]:
    """The events after ``relay``'s checkpoint, ready to send (what the relay publishes next)."""
    return Query(_PUBLISHABLE, {"n": relay, "limit": limit}, _publishable)


async def read_publishable(conn: AsyncConnection, relay: str, limit: int) -> list[Publishable]:
    return await run(conn, publishable_query(relay, limit))


def _publishable(rows: Sequence[Any]) -> list[Publishable]:
    return [Publishable(Position(int(row.tx_id_text), int(row.position)), row.message_key,
                        row.event_type, row.event_id, row.correlation_id, row.value.encode())
            for row in rows]


def to_record(event: Publishable, topic: str) -> OutgoingRecord:
    return OutgoingRecord(
        topic=topic,
        key=event.key,
        value=event.value,
        headers=relay_headers(event.event_type, str(event.event_id), event.correlation_id),
    )


def relay_headers(event_type: str, event_id: str, correlation_id: str) -> dict[str, str]:
    """The headers the relay sends with an event (consumers may skip on ``event_type``)."""
    return {"event_type": event_type, "event_id": event_id, "correlation_id": correlation_id}


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))")


def _first(rows: Sequence[Any]) -> Any:
    return rows[0][0]


class OutboxRelay:
    """Tails the event store in commit order and publishes each event to its topic.

    Woken by LISTEN/NOTIFY (the insert trigger), with polling as a fallback. The checkpoint is
    saved (in the database, per relay ``name``) after the broker acknowledged a batch, so a crash
    republishes rather than loses.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        *,
        name: str,
        topic_for: Callable[[Publishable], str],
        listen_url: str | None = None,
        batch_size: int = 2000,
        poll_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.name = name
        self.topic_for = topic_for
        self.listen_url = listen_url
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._held_back = False
        self.published = 0

    async def reset(self, since: Position | None = None) -> None:
        """Publish the history again from ``since`` (the start when None): broker loss recovery.

        Waits for a batch being published (by any instance) to finish first, so that batch's
        checkpoint cannot overwrite the reset.
        """
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                               {"k": self._lock_key})
            await save_checkpoint(conn, self.name, since or Position.start())
        self._wake.set()

    @property
    def _lock_key(self) -> str:
        return f"oms.relay.{self.name}"

    async def publish_pending(self) -> int:
        """Publish everything committed and not yet published; returns how many were sent.

        Each batch is read, published and checkpointed under a transaction-scoped advisory lock,
        so several instances of a service never publish the same batch at once nor move the
        checkpoint backwards; an instance that finds the lock taken leaves the work to its holder.
        """
        sent = 0
        self._held_back = False
        while True:
            async with self.engine.begin() as conn:
                # The lock, the checkpoint and the events after it in one round trip; the reads
                # run after the lock is granted (their results are dropped when it is not).
                locked, checkpoint, batch = await pipelined(conn, [
                    Query(_TRY_LOCK, {"k": self._lock_key}, _first),
                    _load_checkpoint(self.name),
                    publishable_query(self.name, self.batch_size)])
                if not locked:
                    return sent
                if batch:
                    await self.publisher.publish([to_record(e, self.topic_for(e)) for e in batch])
                    checkpoint = batch[-1].position
                # A short batch is all there was: what commits later wakes the relay (NOTIFY), so
                # no second transaction just to find nothing; only events held back behind an
                # older transaction still running are looked for again soon.
                caught_up = len(batch) < self.batch_size
                after: list[Query[Any]] = [_save_checkpoint(self.name, checkpoint)] if batch else []
                if caught_up:
                    after.append(held_back_query(checkpoint))
                done = await pipelined(conn, after)
                if caught_up:
                    self._held_back = done[-1]
            if batch:
                sent += len(batch)
                self.published += len(batch)
                METRICS.inc("oms_relay_published_total", len(batch), relay=self.name)
            if caught_up:
                return sent

    async def run(self) -> None:
        """Serve until cancelled."""
        listener = asyncio.create_task(self._listen()) if self.listen_url else None
        try:
            while True:
                self._wake.clear()
                try:
                    await self.publish_pending()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # broker or database away: keep trying
                    log.warning("relay batch failed; retrying", relay=self.name, error=str(error))
                    await asyncio.sleep(min(5.0, self.poll_seconds))
                    continue
                # Events committed behind a transaction still running are released when it ends,
                # and that transaction may insert no event (so no NOTIFY): look again soon.
                wait = min(self.poll_seconds, HELD_BACK_RETRY_SECONDS) if self._held_back \
                    else self.poll_seconds
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when the
                # task is cancelled in the same loop iteration as the event is set (the wake of
                # the commit a test or a shutdown just made), the cancellation is lost and the
                # relay runs on: its service never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _listen(self) -> None:
        assert self.listen_url is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.listen_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()  # catch up on commits made before LISTEN took effect
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # polling covers the gap while LISTEN reconnects
                log.warning("relay listener lost; polling until it reconnects", error=str(error))
                await asyncio.sleep(self.poll_seconds)
