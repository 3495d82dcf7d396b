"""Idempotent consumption: each message id is recorded in the same transaction as its effect.

A batch is handled in one transaction, all messages together (the fast path); if any of them
fails, that transaction is undone and the batch handled again in a new one, each message in its
own savepoint, so one bad message goes to the dead-letter table (and ``<topic>.dlq``) without
undoing its neighbours. Transient
failures (connection lost, serialisation, deadlock) retry the whole batch with backoff and
finally propagate, so the subscriber seeks back and the batch is delivered again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.contract.topics import dlq
from shared.db import run_script
from shared.eventstore import ConcurrencyError
from shared.incoming import MESSAGE_NAMESPACE as MESSAGE_NAMESPACE
from shared.incoming import Incoming as Incoming
from shared.incoming import content_id as content_id
from shared.incoming import incoming_from_record as incoming_from_record
from shared.kafka import OutgoingRecord, Publisher
from shared.logging import about, get_logger
from shared.metrics import METRICS
from shared.streamlocks import lock_stream

log = get_logger(__name__)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS inbox (
    message_id   uuid        PRIMARY KEY,
    consumer     text        NOT NULL,
    topic        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial   PRIMARY KEY,
    message_id   uuid        NOT NULL,
    consumer     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    key          text,
    value        bytea       NOT NULL,
    error        text        NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    redriven_at  timestamptz
);
CREATE INDEX IF NOT EXISTS dead_letters_unpublished ON dead_letters (id) WHERE published_at IS NULL;
"""

DEAD_LETTER_PAGE = 1000



async def ensure_schema(conn: AsyncConnection) -> None:
    await run_script(conn, SCHEMA_SQL)


class TransientError(Exception):
    """A failure worth retrying (a dependency away); never dead-lettered."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientError | OSError | TimeoutError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        )
    return False


Handler = Callable[[AsyncConnection, Incoming], Awaitable[None]]


class BatchWork(Protocol):
    """One batch handled together: ``handle`` each message in order (state may stay in memory),
    then ``finish`` writes what is left. The effect must equal handling each message alone with
    the service's ``Handler`` (the consumer falls back to that whenever the batch fails)."""

    async def handle(self, message: Incoming) -> None: ...

    async def finish(self) -> None: ...

    # Optional: ``def committed(self) -> None``, called once the batch's transaction committed
    # (to keep what it wrote in memory for later batches; never called for an undone batch).


# Loads what the batch needs in bulk (inside the inbox's transaction) and returns its work.
BatchStart = Callable[[AsyncConnection, Sequence[Incoming]], Awaitable[BatchWork]]


class _TogetherFailed(Exception):
    """The batch (``messages`` of them) failed when handled together (``error``): undo it and
    handle it one message at a time."""

    def __init__(self, error: Exception, messages: int) -> None:
        super().__init__(str(error))
        self.error, self.messages = error, messages


def _context(message: Incoming) -> dict[str, Any]:
    """What every log line about this message carries."""
    env = message.envelope
    return {
        "event_id": str(env.event_id) if env else str(message.message_id),
        "correlation_id": env.correlation_id if env else None,
        "order_id": env.order_id if env else None,
        "topic": message.topic,
    }


class IdempotentConsumer:
    def __init__(
        self,
        *,
        name: str,
        engine: AsyncEngine,
        publisher: Publisher | None,
        handle: Handler,
        start_batch: BatchStart | None = None,
        envelopes: bool = True,
        max_attempts: int = 6,
        base_delay: float = 0.1,
        handles: frozenset[str] | None = None,
    ) -> None:
        self.name = name
        # The event types ``handle`` acts on (None: all): an envelope of another type is skipped
        # unread and unclaimed (handling it would change nothing, so it needs no inbox row).
        self.handles = handles
        self.engine = engine
        self.publisher = publisher
        self.handle = handle
        self.start_batch = start_batch
        self.envelopes = envelopes
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._dead_letters_unpublished = False

    async def process(self, records: Sequence[Any]) -> None:
        # Storefront topics carry the storefronts' own JSON; every oms.* topic carries envelopes.
        wanted = [r for r in records if self._wanted(r)]
        batch = [incoming_from_record(r, envelopes=self.envelopes and r.topic.startswith("oms."))
                 for r in wanted]
        await self.process_incoming(batch, skipped=len(records) - len(wanted))

    def _wanted(self, record: Any) -> bool:
        """False for an oms.* record whose event_type header (set by every relay) names a type
        ``handle`` ignores; a record without the header is decoded and judged by its envelope."""
        if self.handles is None or not self.envelopes or not record.topic.startswith("oms."):
            return True
        for name, value in record.headers or ():
            if name == "event_type" and value:
                return bytes(value).decode(errors="replace") in self.handles
        return True

    async def process_incoming(self, batch: Sequence[Incoming], skipped: int = 0) -> None:
        if self.handles is not None:
            kept = [m for m in batch if m.envelope is None or m.envelope.event_type in self.handles]
            skipped, batch = skipped + len(batch) - len(kept), kept
        if skipped:
            METRICS.inc("oms_consumer_skipped_total", skipped, consumer=self.name)
        if not batch:  # nothing to claim or handle: no transaction
            if self._dead_letters_unpublished:
                await self._publish_dead_letters()
            return
        for attempt in range(1, self.max_attempts + 1):
            try:
                dead = await self._process_once(batch)
                break
            except Exception as error:
                if not is_transient(error) or attempt == self.max_attempts:
                    METRICS.inc("oms_consumer_batch_failures_total", consumer=self.name)
                    raise
                delay = self.base_delay * 2 ** (attempt - 1)
                log.warning("transient failure; retrying batch", consumer=self.name,
                            attempt=attempt, delay=delay, error=str(error))
                await asyncio.sleep(delay)
        if dead or self._dead_letters_unpublished:
            await self._publish_dead_letters()

    async def _publish_dead_letters(self) -> None:
        # The batch and its dead letters are committed; failing here would only make the broker
        # redeliver a batch the inbox already holds, so keep the letters for the next batch.
        try:
            await self.flush_dead_letters()
            self._dead_letters_unpublished = False
        except Exception as error:
            self._dead_letters_unpublished = True
            log.warning("dead letters not published yet; retrying with the next batch",
                        consumer=self.name, error=str(error))

    async def _claim(self, conn: AsyncConnection, batch: Sequence[Incoming]) -> set[uuid.UUID]:
        result = await conn.execute(
            text(
                "INSERT INTO inbox (message_id, consumer, topic) "
                "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:consumers AS text[]), "
                "CAST(:topics AS text[])) ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
            ),
            {
                "ids": [m.message_id for m in batch],
                "consumers": [self.name] * len(batch),
                "topics": [m.topic for m in batch],
            },
        )
        return {row[0] for row in result}

    async def _process_once(self, batch: Sequence[Incoming]) -> int:
        """The batch in one transaction, its messages together (no savepoint: two round trips
        less); if that fails, not transiently, it is undone and the batch handled again in a new
        one, one message per savepoint. Returns how many messages were dead-lettered."""
        try:
            return await self._attempt(batch, together=True)
        except _TogetherFailed as failed:
            if failed.messages > 1:  # (a lone message that failed is no batch falling back)
                METRICS.inc("oms_consumer_batch_fallbacks_total", consumer=self.name)
                log.info("batch handled one message at a time", consumer=self.name,
                         reason=f"{type(failed.error).__name__}: {failed.error}"[:300])
            # Another writer moved a stream on: this time hold its lock (see _handle_one).
            contested = failed.error.stream_id if isinstance(failed.error, ConcurrencyError) \
                else None
            return await self._attempt(batch, together=False, contested=contested)

    async def _attempt(self, batch: Sequence[Incoming], *, together: bool,
                       contested: str | None = None) -> int:
        errors: dict[uuid.UUID, str] = {}
        dead = 0
        done: list[BatchWork] = []  # the batch work, once it went through
        async with self.engine.begin() as conn:
            fresh = await self._claim(conn, batch)
            todo: list[Incoming] = []
            for message in batch:
                if message.message_id not in fresh:
                    METRICS.inc("oms_consumer_duplicates_total", consumer=self.name)
                    continue
                fresh.discard(message.message_id)  # the same message twice in one batch
                if message.decode_error is not None:
                    errors[message.message_id] = message.decode_error
                else:
                    todo.append(message)
            if together:
                await self._handle_together(conn, todo, done)
            else:
                if contested is not None:
                    await lock_stream(conn, contested)
                for message in todo:
                    error = await self._handle_one(conn, message)
                    if error is not None:
                        errors[message.message_id] = error
            for message in batch:
                error = errors.pop(message.message_id, None)
                if error is not None:
                    await self._record_dead_letter(conn, message, error)
                    dead += 1
        METRICS.inc("oms_consumer_messages_total", len(batch), consumer=self.name)
        committed = getattr(done[0], "committed", None) if done else None
        if committed is not None:  # only now is what the batch work wrote durable
            committed()
        return dead

    async def _handle_together(self, conn: AsyncConnection, messages: Sequence[Incoming],
                               done: list[BatchWork]) -> None:
        """Every message in order, through the service's batch work when it has one and there
        are two or more; that work is appended to ``done`` (its ``committed`` is called after
        the commit). A failure raises _TogetherFailed (transient ones propagate as they are)."""
        try:
            if self.start_batch is None or len(messages) < 2:
                for message in messages:
                    with about(partial(_context, message)):
                        await self.handle(conn, message)
            else:
                METRICS.inc("oms_consumer_batch_work_total", consumer=self.name)
                work = await self.start_batch(conn, messages)
                for message in messages:
                    with about(partial(_context, message)):
                        await work.handle(message)
                await work.finish()
                done.append(work)
        except Exception as error:
            if is_transient(error):
                raise
            raise _TogetherFailed(error, len(messages)) from error

    async def _handle_one(self, conn: AsyncConnection, message: Incoming) -> str | None:
        with about(partial(_context, message)):
            for _ in range(5):
                try:
                    async with conn.begin_nested():
                        await self.handle(conn, message)
                    return None
                except ConcurrencyError as conflict:
                    # Another writer moved the stream on: reload and decide again, this time
                    # holding the stream's lock (the key people's commands on an order take), so
                    # the retries queue behind the other writer instead of racing it again.
                    await lock_stream(conn, conflict.stream_id)
                    continue
                except Exception as error:
                    if is_transient(error):
                        raise
                    log.exception("handler failed; dead-lettering message")
                    return f"{type(error).__name__}: {error}"[:4000]
            return "ConcurrencyError: the stream kept changing; gave up after 5 attempts"

    async def _record_dead_letter(self, conn: AsyncConnection, message: Incoming, error: str
                                  ) -> None:
        log.warning("message dead-lettered", consumer=self.name, topic=message.topic,
                    partition=message.partition, offset=message.offset, error=error[:300])
        METRICS.inc("oms_dead_letters_total", consumer=self.name, topic=message.topic)
        await conn.execute(
            text(
                'INSERT INTO dead_letters (message_id, consumer, topic, partition, "offset", key, '
                "value, error) VALUES (:id, :consumer, :topic, :partition, :offset, :key, "
                ":value, :error)"
            ),
            {
                "id": message.message_id, "consumer": self.name, "topic": message.topic,
                "partition": message.partition, "offset": message.offset, "key": message.key,
                "value": message.value, "error": error,
            },
        )

    async def flush_dead_letters(self) -> int:
        """Publish recorded dead letters to ``<topic>.dlq`` (retried until the broker takes them).

        Returns how many were published; a dead letter is marked published only after the broker
        acknowledged it, so a failure here publishes it again later rather than losing it.
        """
        if self.publisher is None:
            return 0
        published = 0
        while True:
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            'SELECT id, message_id, topic, partition, "offset", key, value, error, '
                            "failed_at FROM dead_letters WHERE published_at IS NULL AND consumer = :c "
                            "ORDER BY id LIMIT :limit"
                        ),
                        {"c": self.name, "limit": DEAD_LETTER_PAGE},
                    )
                ).all()
                await conn.rollback()
            if not rows:
                return published
            await self.publisher.publish([self._dead_letter_record(row) for row in rows])
            async with self.engine.begin() as conn:
                await conn.execute(
                    text("UPDATE dead_letters SET published_at = now() WHERE id = ANY(:ids)"),
                    {"ids": [row.id for row in rows]},
                )
            published += len(rows)
            if len(rows) < DEAD_LETTER_PAGE:
                return published

    def _dead_letter_record(self, row: Any) -> OutgoingRecord:
        value = bytes(row.value)
        return OutgoingRecord(
            topic=dlq(row.topic),
            key=row.key,
            value=json.dumps(
                {
                    "message_id": str(row.message_id), "topic": row.topic,
                    "partition": row.partition, "offset": row.offset, "key": row.key,
                    "consumer": self.name, "error": row.error,
                    "failed_at": row.failed_at.isoformat(),
                    "original": value.decode("utf-8", errors="replace"),
                    "original_b64": base64.b64encode(value).decode(),
                },
                ensure_ascii=False,
            ).encode(),
            headers={"error": row.error[:500], "consumer": self.name},
        )
