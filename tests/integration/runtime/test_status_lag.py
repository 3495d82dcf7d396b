"""``oms status``'s broker backlog on a real broker: a group counts what it has not committed, and
a group that never committed counts every message from the beginning (where it would start)."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contract.topics import consumer_group
from shared.runtime.embedded import create_topics
from shared.runtime.status import ServiceReport, _groups


async def test_the_backlog_counts_from_the_commit_or_from_the_beginning(kafka_bootstrap):
    service, topic = f"status-{uuid.uuid4().hex[:8]}", f"status-lag-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, b"{}", partition=n % 2)  # 3 on 0, 2 on 1
    finally:
        await producer.stop()

    async def backlog() -> int | None:
        report = ServiceReport(service)
        await _groups(kafka_bootstrap, [report], {service: (topic,)})
        return report.lag

    assert await backlog() == 5  # never committed: it would start at the beginning

    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap,
                                 group_id=consumer_group(service), enable_auto_commit=False)
    await committer.start()
    try:
        first = TopicPartition(topic, 0)
        committer.assign([first])
        await committer.commit({first: 2})  # two of partition 0's three handled
    finally:
        await committer.stop()
    assert await backlog() == 1 + 2  # one left on partition 0, partition 1 untouched
