"""What ``oms status`` reports: each service's instances (up, consumed), its broker backlog (the
consumer group's lag), what its relay has still to publish and its dead letters waiting.

Read from where a running system can be reached (``shared/runtime/endpoints.py``: a running
``oms run``, else ``OMS_<SERVICE>_URL`` / ``OMS_<SERVICE>_DATABASE_URL`` / ``OMS_KAFKA_BOOTSTRAP``);
every part is read on its own, so one that cannot be reached is named and the rest still shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from shared.contract.topics import CONSUMED, consumer_group
from shared.db import libpq_url
from shared.metrics import scraped_total
from shared.runtime.datadir import DataDir
from shared.runtime.endpoints import database_url, kafka_bootstrap, service_urls
from shared.runtime.plan import instance_names
from shared.settings import SERVICES, OmsSettings

TIMEOUT = 5.0


@dataclass
class InstanceReport:
    name: str
    url: str
    up: bool = False
    pid: int | None = None
    consumed: int | None = None  # messages its consumer handled since it started
    problem: str = ""


@dataclass
class ServiceReport:
    name: str
    instances: list[InstanceReport] = field(default_factory=list)
    lag: int | None = None  # messages on its partitions its consumer group has not committed yet
    members: int | None = None  # consumers in its group now
    unpublished: int | None = None  # its events the relay has not published yet
    dead_letters: int | None = None  # messages it could not handle, not re-driven yet
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(i.up for i in self.instances) and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"service": self.name, "healthy": self.healthy, "lag": self.lag,
                "members": self.members, "unpublished": self.unpublished,
                "dead_letters": self.dead_letters, "problems": self.problems,
                "instances": [vars(i) for i in self.instances]}


@dataclass
class StatusReport:
    services: list[ServiceReport]
    problems: list[str] = field(default_factory=list)  # what concerns them all (the broker)

    @property
    def healthy(self) -> bool:
        return all(s.healthy for s in self.services) and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "problems": self.problems,
                "services": [s.as_json() for s in self.services]}


def gather(services: tuple[str, ...] = SERVICES, settings: OmsSettings | None = None,
           ) -> StatusReport:
    settings = settings or OmsSettings()
    pids = _pids(settings)
    reports = []
    with httpx.Client(timeout=TIMEOUT) as client:
        for name in services:
            urls = service_urls(name, settings)
            report = ServiceReport(name, [InstanceReport(instance, url) for instance, url
                                          in zip(instance_names(name, len(urls)), urls, strict=True)])
            for instance in report.instances:
                instance.pid = pids.get(instance.name)
                _probe(client, instance)
            _database(report, database_url(name, settings))
            reports.append(report)
    status = StatusReport(reports)
    bootstrap = kafka_bootstrap(settings)
    if bootstrap is None:
        status.problems.append(f"no broker known: no `oms run` is running on {settings.data_dir} "
                               "(OMS_DATA_DIR) and OMS_KAFKA_BOOTSTRAP is not set")
    else:
        try:
            asyncio.run(asyncio.wait_for(_groups(bootstrap, reports), timeout=3 * TIMEOUT))
        except Exception as error:  # any broker failure is reported, not raised
            status.problems.append(f"broker {bootstrap}: {error or type(error).__name__}")
    return status


def _pids(settings: OmsSettings) -> dict[str, int]:
    state = DataDir(settings.data_dir).read_state() or {}
    return {str(p["role"]).removeprefix("service:"): int(p["pid"])
            for p in state.get("processes", []) if str(p.get("role", "")).startswith("service:")}


def _probe(client: httpx.Client, instance: InstanceReport) -> None:
    try:
        answer = client.get(f"{instance.url}/health")
        instance.up = answer.status_code == 200
        if not instance.up:
            instance.problem = f"/health answered {answer.status_code}"
            return
        metrics = client.get(f"{instance.url}/metrics").text
    except httpx.HTTPError as error:
        instance.problem = f"not answering ({type(error).__name__})"
        return
    instance.consumed = int(scraped_total(metrics, "oms_consumer_messages_total"))


def _database(report: ServiceReport, url: str | None) -> None:
    if url is None:
        report.problems.append(f"no database known (set OMS_{report.name.upper()}_DATABASE_URL "
                               "or OMS_DATABASE_URL)")
        return
    try:
        with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=int(TIMEOUT)) as conn:
            checkpoint = conn.execute("SELECT tx_id, position FROM relay_checkpoints WHERE name = %s",
                                      (report.name,)).fetchone()
            if checkpoint is None:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
            else:
                row = conn.execute("SELECT count(*) FROM events WHERE (tx_id, position) > (%s, %s)",
                                   checkpoint).fetchone()
            report.unpublished = int(row[0]) if row else None
            row = conn.execute("SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL"
                               ).fetchone()
            report.dead_letters = int(row[0]) if row else None
    except psycopg.Error as error:
        report.problems.append(f"database: {str(error).strip().splitlines()[0]}")


async def _groups(bootstrap: str, reports: list[ServiceReport],
                  consumed: Mapping[str, Sequence[str]] = CONSUMED) -> None:
    """Each group's backlog on the topics its service consumes: from its committed offset, or
    from the beginning of a partition it has committed none on (where it starts: earliest).
    Read as a consumer of the group that never joins it (Tansu answers the admin client's
    OffsetFetch in a form aiokafka cannot read); then how many consumers the group has now."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    ms = int(TIMEOUT * 1000)
    for report in reports:
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=consumer_group(report.name),
                                  enable_auto_commit=False, request_timeout_ms=ms)
        await reader.start()
        try:
            existing = await reader.topics()
            partitions = [TopicPartition(t, p) for t in consumed.get(report.name, ())
                          if t in existing for p in sorted(reader.partitions_for_topic(t) or ())]
            committed = {tp: await reader.committed(tp) for tp in partitions}
            ends = await reader.end_offsets(partitions) if partitions else {}
            starts = await reader.beginning_offsets(partitions) if partitions else {}
            report.lag = sum(max(ends[tp] - (starts[tp] if (at := committed[tp]) is None else at), 0)
                             for tp in partitions)
        finally:
            await reader.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms)
    await admin.start()
    try:
        for report in reports:
            described = await admin.describe_consumer_groups([consumer_group(report.name)])
            report.members = sum(len(g[5]) for response in described for g in response.groups)
    finally:
        await admin.close()
