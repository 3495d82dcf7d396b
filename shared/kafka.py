"""Broker wiring: the producer every service publishes with, and FastStream batch subscribers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from shared.settings import OmsSettings


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Publisher:
    """Pipelined publishing: enqueue a whole batch, then wait for every acknowledgement once."""

    def __init__(self, bootstrap: str, *, idempotent: bool) -> None:
        # Tansu refuses idempotent producers; Apache Kafka should have them on.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=idempotent,
            acks="all",
            linger_ms=2,
            max_batch_size=512 * 1024,
            request_timeout_ms=30_000,
        )
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._producer.stop()
            self._started = False

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        futures: list[asyncio.Future[Any]] = []
        for record in records:
            futures.append(
                await self._producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key.encode() if record.key is not None else None,
                    headers=[(k, v.encode()) for k, v in record.headers.items()],
                )
            )
        if futures:
            await asyncio.gather(*futures)


def make_publisher(settings: OmsSettings) -> Publisher:
    if not settings.kafka_bootstrap:
        raise RuntimeError("OMS_KAFKA_BOOTSTRAP is not set (oms run sets it for the embedded broker)")
    return Publisher(settings.kafka_bootstrap, idempotent=settings.idempotent_producer())


def make_broker(settings: OmsSettings) -> KafkaBroker:
    if not settings.kafka_bootstrap:
        raise RuntimeError("OMS_KAFKA_BOOTSTRAP is not set (oms run sets it for the embedded broker)")
    import logging

    quiet = logging.getLogger("oms.faststream")
    quiet.setLevel(logging.WARNING)
    return KafkaBroker(settings.kafka_bootstrap, logger=quiet, enable_idempotence=False)


BatchFn = Callable[[Sequence[Any]], Awaitable[None]]


def _records(message: StreamMessage[Any]) -> tuple[Any, ...]:
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, tuple) else (raw,)


def _readable_headers(record: Any) -> Any:
    headers = record.headers or ()
    try:
        for _, value in headers:
            value.decode()
        return record
    except (AttributeError, UnicodeDecodeError):  # a None or non-UTF-8 header value
        return dataclasses.replace(record, headers=[
            (key, (value or b"").decode(errors="replace").encode()) for key, value in headers
        ])


async def _tolerant_parse(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser decodes every header as UTF-8 and fails on anything else; a record
    it cannot parse is neither handled nor nacked (silently skipped). Make headers readable."""
    if isinstance(message, tuple):
        return await original(tuple(_readable_headers(record) for record in message))
    return await original(_readable_headers(message))


async def _undecoded(message: StreamMessage[Any]) -> list[bytes]:
    """Leave bodies as bytes: the inbox decodes each record itself and dead-letters what it
    cannot read. FastStream's own decoding raises on a body that is not the JSON its
    content-type header promises, before the handler runs; NACK_ON_ERROR would then seek back to
    that poison message forever and block its partition."""
    return [record.value or b"" for record in _records(message)]


def heartbeat_interval(session_timeout_ms: int) -> int:
    """A third of the session (Kafka's advice), at most aiokafka's usual 3 s."""
    return min(3_000, session_timeout_ms // 3)


def subscribe_batches(
    broker: KafkaBroker,
    topics: Sequence[str],
    *,
    group_id: str,
    on_batch: BatchFn,
    max_records: int = 500,
    fetch_max_wait_ms: int = 500,
    batch_timeout_ms: int = 5,
    session_timeout_ms: int = 10_000,
) -> None:
    """One batch subscriber; offsets are committed only after ``on_batch`` returns.

    ``AckPolicy.NACK_ON_ERROR``: success commits the offsets; an exception seeks back so the
    batch is delivered again (the idempotent inbox makes that harmless).
    """

    @broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval(session_timeout_ms),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_undecoded,
        parser=_tolerant_parse,
    )
    async def _handle_batch(message: KafkaMessage) -> None:
        await on_batch(list(_records(message)))
