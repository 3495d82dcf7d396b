"""`oms republish` on real PostgreSQL and Tansu: the relay checkpoint moves back to the first event
at/after --since, and a running relay sends those events again with their original event ids."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.commitorder import read_all, read_committed_after
from shared.contract.envelope import EventEnvelope
from shared.db import libpq_url
from shared.eventstore import Position
from shared.kafka import Publisher
from shared.outbox import OutboxRelay, load_checkpoint, save_checkpoint
from shared.runtime.embedded import create_topics
from tests.conftest import unique_topic, wait_until
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle

pytestmark = pytest.mark.integration

APP = cli("shared.cli.republish")


async def test_checkpoint_moves_to_the_first_event_since(engine: AsyncEngine, database_url: str,
                                                         tmp_path: Path) -> None:
    await order_lifecycle(engine, "O-1")  # T0, T0+1m, T0+2m
    await order_lifecycle(engine, "O-2")  # T0+3m .. T0+5m (the clock carries on)
    async with engine.begin() as conn:
        everything = await read_all(conn)
        await save_checkpoint(conn, "order", everything[-1].position)  # all published once
    env = database_env(tmp_path, order=database_url)
    since = (T0 + timedelta(minutes=1)).isoformat()
    result = await invoke(APP, ["republish", "--service", "order", "--since", since], env)
    assert result.exit_code == 0, result.output
    assert "5 events will be republished" in result.output
    async with engine.connect() as conn:
        checkpoint = await load_checkpoint(conn, "order")
        again = await read_committed_after(conn, checkpoint)
    assert [e.envelope.event_id for e in again] == [e.envelope.event_id for e in everything[1:]]

    whole = await invoke(APP, ["republish", "--service", "order"], env)
    assert "6 events will be republished" in whole.output
    async with engine.connect() as conn:
        assert await load_checkpoint(conn, "order") == Position.start()
    later = await invoke(APP, ["republish", "--service", "order", "--since", "2030-01-01"], env)
    assert later.exit_code == 0 and "0 events will be republished" in later.output


async def test_a_running_relay_sends_the_same_events_again(
        engine: AsyncEngine, database_url: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    await order_lifecycle(engine, "O-R")
    first_topic, second_topic = unique_topic("republish"), unique_topic("republish")
    await create_topics(kafka_bootstrap, [first_topic, second_topic], 1)
    destination = {"topic": first_topic}
    publisher = Publisher(kafka_bootstrap, idempotent=False)
    await publisher.start()
    relay = OutboxRelay(engine, publisher, name="order", topic_for=lambda _: destination["topic"],
                        listen_url=libpq_url(database_url), poll_seconds=0.2)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: _published(relay, 3))
        destination["topic"] = second_topic  # the broker lost everything: a fresh, empty topic
        result = await invoke(APP, ["republish", "--service", "order"],
                              database_env(tmp_path, order=database_url))
        assert "3 events will be republished" in result.output
        await wait_until(lambda: _published(relay, 6))
        again = await _event_ids(kafka_bootstrap, second_topic, 3)
        async with engine.connect() as conn:
            stored = [e.envelope.event_id for e in await read_all(conn)]
        assert again == stored
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await publisher.stop()


async def _published(relay: OutboxRelay, count: int) -> bool:
    return relay.published >= count


async def _event_ids(bootstrap: str, topic: str, count: int) -> list[object]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[object] = []
    try:
        async def enough() -> bool:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(EventEnvelope.from_json(r.value).event_id for r in batch)
            return len(found) >= count

        await wait_until(enough, 20)
    finally:
        await consumer.stop()
    return found
