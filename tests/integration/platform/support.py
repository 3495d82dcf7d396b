"""Test support for the consumer tests: a tally projection with a handler that can be told to fail."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.inbox import Incoming, TransientError
from tests.conftest import wait_until

TALLY_SCHEMA = """
CREATE TABLE IF NOT EXISTS tallies (
    order_id text PRIMARY KEY,
    amount   numeric NOT NULL,
    messages integer NOT NULL
);
"""


def tally_event(order_id: str, amount: str, **extra: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type="test.tallied", schema_version=1,
        stream_id=order_id, stream_version=1, occurred_at=datetime(2026, 11, 21, tzinfo=UTC),
        correlation_id=f"corr-{order_id}", actor=SYSTEM,
        payload={"order_id": order_id, "amount": amount, **extra},
    )


def record(topic: str, offset: int, value: bytes, key: str | None = None, partition: int = 0
           ) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=key.encode() if key else None, value=value, checksum=None,
        serialized_key_size=len(key or ""), serialized_value_size=len(value), headers=[],
    )


@dataclass
class TallyHandler:
    """Adds each message's amount to its order's tally: a projection that double-counts
    whenever a message takes effect twice, so it shows exactly-once effects."""

    transient_failures: dict[str, int] = field(default_factory=dict)  # order id -> failures left
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, conn: AsyncConnection, message: Incoming) -> None:
        payload = message.event.payload
        order_id = str(payload["order_id"])
        self.calls[order_id] += 1
        if payload.get("explode"):
            raise ValueError(f"cannot tally order {order_id}: {payload['explode']}")
        if self.transient_failures.get(order_id, 0) > 0:
            self.transient_failures[order_id] -= 1
            raise TransientError(f"ledger for {order_id} unavailable")
        await conn.execute(
            text(
                "INSERT INTO tallies (order_id, amount, messages) VALUES (:o, :a, 1) "
                "ON CONFLICT (order_id) DO UPDATE SET amount = tallies.amount + EXCLUDED.amount, "
                "messages = tallies.messages + 1"
            ),
            {"o": order_id, "a": Decimal(str(payload["amount"]))},
        )


async def create_tallies(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(TALLY_SCHEMA))


async def tallies(engine: AsyncEngine) -> dict[str, tuple[str, int]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT order_id, amount, messages FROM tallies"))).all()
    return {row.order_id: (str(row.amount), row.messages) for row in rows}


async def dead_letters(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT * FROM dead_letters ORDER BY id"))).all())


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0
                     ) -> list[dict[str, Any]]:
    """The first ``count`` JSON messages of a topic, read from the beginning."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async def enough() -> bool:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(batch)
            return len(found) >= count

        await wait_until(enough, timeout)
    finally:
        await consumer.stop()
    return [json.loads(r.value) for r in found]
