"""Poison messages land in ``<topic>.dlq`` with the error, the partition keeps flowing, and
``oms dlq`` lists and redrives them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from services.order.domain.lifecycle import order_id_for
from shared.cli import dlq
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.topics import ORDER_EVENTS
from shared.kafka import OutgoingRecord, Publisher
from shared.runtime.supervisor import Runtime
from shared.service import stop_within
from tests.fault.conftest import (
    Traffic,
    converge,
    doubled,
    expected,
    explain,
    query,
    send,
    snapshot,
)

CONSUMERS = ("inventory", "billing", "notify", "reconcile")  # every reader of oms.order.events.v1


def publish_raw(rt: Runtime, records: list[OutgoingRecord]) -> None:
    async def go() -> None:
        publisher = Publisher(rt.info.kafka_bootstrap, idempotent=False)
        await publisher.start()
        try:
            await publisher.publish(records)
        finally:
            await publisher.stop()
    asyncio.run(go())


def dlq_topic_messages(rt: Runtime, topic: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=rt.info.kafka_bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    group_id=f"fault-{uuid.uuid4().hex[:8]}")
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=5000)
            return [json.loads(r.value) for records in batches.values() for r in records]
        finally:  # a group consumer's stop can wait on its coordinator for ever: bounded
            await stop_within("the DLQ reader", consumer.stop())
    return asyncio.run(go())


def eventually(check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def letters(rt: Runtime, service: str, key: str) -> list[tuple[Any, ...]]:
    return query(rt, service, "SELECT id, error, published_at, redriven_at, message_id FROM dead_letters "
                 f"WHERE key = '{key}' ORDER BY id")


def cli(rt: Runtime, *args: str) -> str:
    app = typer.Typer()
    dlq.register(app)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, ["dlq", *args], env={
        "OMS_DATA_DIR": str(rt.info.data_dir), "OMS_KAFKA_BOOTSTRAP": rt.info.kafka_bootstrap,
        **{f"OMS_{s.upper()}_DATABASE_URL": rt.info.database_url(s) for s in rt.info.services}})
    assert result.exit_code == 0, result.output
    return result.output


def test_poison_messages_are_dead_lettered_and_the_partition_keeps_flowing(runtime: Runtime) -> None:
    before = snapshot(runtime)
    flow = Traffic("POISON")
    wave = flow.wave(6)
    first = json.loads(wave[0][1])
    key = order_id_for(first["channel"], first["channel_order_id"])  # the same partition as it
    not_json = OutgoingRecord(ORDER_EVENTS, key, b'{"event_id": "not an envelope', {})
    bad_payload = EventEnvelope(
        event_id=uuid.uuid4(), event_type="order.placed", schema_version=1, stream_id=key,
        stream_version=1, occurred_at=datetime.now(UTC), correlation_id=key, actor=SYSTEM,
        payload={"order_id": key, "lines": "not a list", "total": "lots"})
    poison = [not_json, OutgoingRecord(ORDER_EVENTS, key, bad_payload.to_json(),
                                       {"event_type": "order.placed"})]
    publish_raw(runtime, poison)
    send(runtime, wave)  # later valid orders, one of them on the poisoned key

    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=120) == want, explain(runtime)
    # every reader of the topic dead-lettered the broken envelope; billing and inventory also
    # the order.placed their handler could not read
    eventually(lambda: all(len(letters(runtime, s, key)) >= 1 for s in CONSUMERS))
    eventually(lambda: all(len(letters(runtime, s, key)) == 2 for s in ("billing", "inventory")))
    eventually(lambda: all(row[2] is not None for s in CONSUMERS for row in letters(runtime, s, key)))
    billing = letters(runtime, "billing", key)
    assert "Invalid JSON" in billing[0][1], billing  # the broken envelope
    assert billing[1][1], billing  # the unreadable order.placed (upcaster or handler refused it)
    published = [m for m in dlq_topic_messages(runtime, f"{ORDER_EVENTS}.dlq") if m["key"] == key]
    assert {m["consumer"] for m in published} >= set(CONSUMERS), published
    assert all(m["error"] and m["original_b64"] for m in published)

    listed = [json.loads(line) for line in cli(runtime, "list", "--service", "billing", "--json")
              .splitlines() if line.startswith("{")]
    assert [x["id"] for x in listed if x["key"] == key] == [row[0] for row in billing]
    assert "dead letter" in cli(runtime, "list")

    # still bad: a redrive dead-letters them again (and only in billing, which asked)
    assert "redriven 2" in cli(runtime, "redrive", "--all", "--service", "billing")
    eventually(lambda: len(letters(runtime, "billing", key)) == 4)
    again = letters(runtime, "billing", key)
    assert all(row[3] is not None for row in again[:2]) and all(row[3] is None for row in again[2:])
    assert len(letters(runtime, "inventory", key)) == 2


def test_redriving_a_message_that_was_handled_has_no_second_effect(runtime: Runtime) -> None:
    before = snapshot(runtime)
    flow = Traffic("REDRIVE")
    wave = flow.wave(3)
    send(runtime, wave)
    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=120) == want, explain(runtime)
    first = json.loads(wave[0][1])
    key = order_id_for(first["channel"], first["channel_order_id"])
    row = query(runtime, "order", (
        "SELECT event_id, event_type, schema_version, stream_id, stream_version, occurred_at, "
        "correlation_id, causation_id, actor, payload FROM events "
        f"WHERE message_key = '{key}' AND event_type = 'order.confirmed'"))[0]
    names = ("event_id", "event_type", "schema_version", "stream_id", "stream_version",
             "occurred_at", "correlation_id", "causation_id", "actor", "payload")
    envelope = EventEnvelope.model_validate(dict(zip(names, row, strict=True)))
    consumer = query(runtime, "billing", f"SELECT consumer FROM inbox WHERE message_id = '{row[0]}'")
    assert consumer, "billing handled the confirmation"
    # as if billing had dead-lettered it by mistake (a bug since fixed): redrive it
    import psycopg

    from shared.db import libpq_url
    with psycopg.connect(libpq_url(runtime.info.database_url("billing")), autocommit=True) as conn:
        letter_id = conn.execute(
            'INSERT INTO dead_letters (message_id, consumer, topic, partition, "offset", key, value, '
            "error, published_at) VALUES (%s, %s, %s, 0, 0, %s, %s, 'simulated', now()) RETURNING id",
            (row[0], consumer[0][0], ORDER_EVENTS, key, envelope.to_json())).fetchone()[0]  # type: ignore[index]
    assert "redriven 1" in cli(runtime, "redrive", str(letter_id), "--service", "billing")
    eventually(lambda: bool(query(runtime, "billing",
                                  f"SELECT 1 FROM inbox WHERE message_id = '{row[0]}'")))
    assert query(runtime, "billing", f"SELECT redriven_at IS NOT NULL FROM dead_letters "
                 f"WHERE id = {letter_id}") == [(True,)]
    time.sleep(2.0)
    assert snapshot(runtime) == want
    assert query(runtime, "billing", f"SELECT count(*) FROM invoices WHERE order_id = '{key}'") == [(1,)]
    assert len(letters(runtime, "billing", key)) == 1  # only the simulated one: handled fine now
    assert doubled(runtime) == {}
