"""Benches 3 and 4: orders/s through all five services, and submission-to-confirmed latency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.bench.results import Report, Row, percentile
from shared.contract.topics import ORDER_EVENTS, STOREFRONT_ORDERS
from shared.demo.plan import encode
from shared.demo.runner import ADMIN, summaries
from shared.demo.traffic import CHANNELS, PRODUCTS, canonical, payment, submission
from shared.metrics import scraped_total
from shared.runtime.info import RuntimeInfo
from shared.runtime.plan import TANSU_FETCH_MAX_WAIT_MS, TANSU_SESSION_TIMEOUT_MS, env_name
from shared.runtime.supervisor import Runtime
from shared.settings import SERVICES

# What "done" means per service for N paid orders (the demo's /summary figures).
MILESTONES: dict[str, tuple[str, str]] = {
    "order": ("order", "paid_orders"),
    "inventory": ("inventory", "orders_reserved"),
    "billing": ("billing", "orders_settled"),
    "notify": ("notify", "orders_notified"),
    "reconcile": ("reconcile", "consistent"),
}


@dataclass
class Traffic:
    """N valid prepaid orders, each followed by its full payment, as (key, value) messages."""

    tag: str
    orders: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def make(cls, count: int, tag: str, seed: int = 6) -> Traffic:
        rng = random.Random(seed)
        now = datetime.now(UTC)
        traffic = cls(tag)
        for n in range(count):
            message = submission(CHANNELS[n % len(CHANNELS)], n, rng=rng, submitted_at=now)
            message["channel_order_id"] = f"{message['channel_order_id']}-{tag}"
            traffic.orders.append(message)
        return traffic

    def messages(self, *, payments: bool = True) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for message in self.orders:
            out.append(encode(message))
            if payments:
                out.append(encode(payment(message, captured_at=datetime.now(UTC))))
        return out


def seed_stock(info: RuntimeInfo, units_per_sku: int) -> None:
    """Receive plenty of every SKU the traffic uses (as the demo's seed_stock does, over HTTP)."""
    url = info.url("inventory")
    with httpx.Client(timeout=30) as client:
        for sku in sorted({canonical(spelled) for _, spelled, _ in PRODUCTS}):
            client.post(f"{url}/stock/receipts", headers=ADMIN, json={
                "sku": sku, "warehouse": "WH-HANGZHOU", "quantity": units_per_sku,
                "reason": "bench opening stock"}).raise_for_status()
        client.put(f"{url}/warehouses/WH-HANGZHOU/priority", headers=ADMIN,
                   json={"priority": 10}).raise_for_status()


async def publish_all(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Pipelined sends (await only the deliveries at the end); seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(STOREFRONT_ORDERS, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def start_runtime(urls: Mapping[str, str], bootstrap: str, root: Path,
                  scale: Mapping[str, int] | None = None) -> Runtime:
    """All five services on ``urls`` (fresh databases of the bench's server), on its broker;
    ``scale``: instances per service, as ``oms run --scale``."""
    environ = {env_name(name, "DATABASE_URL"): urls[name] for name in SERVICES}
    runtime = Runtime(data_dir=root, fresh=True, auto_ports=True, kafka_bootstrap=bootstrap,
                      environ={**os.environ, **environ},
                      extra_env={"OMS_LOG_LEVEL": "WARNING", "OMS_SCHEDULER_SECONDS": "5",
                                 # the bench's broker is an embedded Tansu, passed as configured
                                 "OMS_KAFKA_IDEMPOTENCE": "false",
                                 "OMS_KAFKA_FETCH_MAX_WAIT_MS": TANSU_FETCH_MAX_WAIT_MS,
                                 "OMS_KAFKA_SESSION_TIMEOUT_MS": TANSU_SESSION_TIMEOUT_MS},
                      scale=scale)
    runtime.start()
    return runtime


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its descendants, those that ended included (0 when it
    is gone). Ended children count through their parent's ``children_*`` times (once reaped): a
    PostgreSQL backend or autovacuum worker that exits mid-run must not take its CPU with it."""
    import psutil  # a dependency of pgserver, as in shared.runtime.embedded

    if pid is None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    except psutil.Error:
        return 0.0
    return total


def run_end_to_end(report: Report, info: RuntimeInfo, orders: int, timeout: float | None = None,
                   log: Callable[[str], None] = print,
                   processes: dict[str, int | None] | None = None) -> None:
    """Bench 3: publish N orders + payments, time until reconcile says N consistent.

    ``processes`` (name -> pid, e.g. each service and PostgreSQL) get their CPU time per order
    reported: where the machine's two cores go. ``timeout``: 240 s, longer for more than 9,600
    orders (at least 40 orders/s).
    """
    timeout = timeout if timeout is not None else max(240.0, orders / 40)
    traffic = Traffic.make(orders, "e2e")
    before = _summaries(info)
    cpu_before = {name: cpu_seconds(pid) for name, pid in (processes or {}).items()}
    statements_before = statements(info)
    base = {name: _figure(before, name) for name in MILESTONES}
    started = time.perf_counter()
    publish_seconds = asyncio.run(publish_all(info.kafka_bootstrap, traffic.messages()))
    reached: dict[str, float] = {}
    deadline = started + timeout
    state = before
    while time.perf_counter() < deadline:
        state = _summaries(info)
        now = time.perf_counter() - started
        for name in MILESTONES:
            if name not in reached and _figure(state, name) - base[name] >= orders:
                reached[name] = now
        if "reconcile" in reached:
            break
        time.sleep(0.25)
    done = reached.get("reconcile")
    rate = orders / done if done else None
    consistent = _figure(state, "reconcile") - base["reconcile"]
    report.add(Row("3 end-to-end", f"{orders} orders + payments, 5 services", rate, "orders/s",
                   note=(f"published in {publish_seconds:.1f} s; " + (
                       f"all consistent after {done:.1f} s" if done else
                       f"only {consistent} consistent after {timeout:.0f} s")),
                   target=">= 2,000", met=(rate or 0) >= 2000,
                   extra={"milestones_s": reached, "publish_s": publish_seconds}))
    for name in MILESTONES:
        at = reached.get(name)
        report.add(Row("3 end-to-end", f"  {name} caught up ({MILESTONES[name][1]})",
                       at, "s after first send",
                       note=f"{orders / at:,.0f} orders/s" if at else "not reached"))
    spent = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in (processes or {}).items()}
    for name, count in statements(info).items():
        sent = count - statements_before.get(name, 0.0)
        report.add(Row("3 end-to-end", f"  SQL statements per order: {name}", sent / orders,
                       "statements", note="oms_db_statements_total at /metrics (the run's share)"))
    for name, seconds in spent.items():
        report.add(Row("3 end-to-end", f"  CPU per order: {name}", seconds * 1000 / orders, "ms",
                       note=f"{seconds:.1f} CPU s during the run"))
    if spent:
        total = sum(spent.values())
        report.add(Row("3 end-to-end", "  CPU per order: all of the above", total * 1000 / orders,
                       "ms", note=f"2,000 orders/s on 2 cores allows 1 ms; {total:.0f} CPU s over "
                       f"{done or timeout:.0f} s wall"))
    log(f"  end-to-end: {orders} orders, milestones {({k: round(v, 1) for k, v in reached.items()})}")


def statements(info: RuntimeInfo) -> dict[str, float]:
    """Each service's count of statements sent to PostgreSQL so far (its ``/metrics``, all its
    instances added up)."""
    found: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        for name in info.services:
            found[name] = sum(
                scraped_total(client.get(f"{i.url}/metrics").text, "oms_db_statements_total")
                for i in info.instances_of(name))
    return found


def _summaries(info: RuntimeInfo) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=30) as client:
        return summaries(client, info)


def _figure(state: dict[str, dict[str, Any]], name: str) -> int:
    service, key = MILESTONES[name]
    return int(state.get(service, {}).get(key, 0) or 0)


async def _latency(bootstrap: str, traffic: Traffic, rate: float, settle: float
                   ) -> tuple[list[float], int, float]:
    """Send submissions at ``rate``/s; latency = order.confirmed received - submission sent."""
    sent: dict[str, float] = {}
    placed: dict[str, str] = {}  # order id -> channel order id
    confirmed: dict[str, float] = {}
    consumer = AIOKafkaConsumer(ORDER_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5)
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():  # make the seek take effect before traffic starts
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    stop = asyncio.Event()
    everything = asyncio.Event()
    messages = traffic.messages(payments=False)

    async def consume() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=20, max_records=2000)
            received = time.perf_counter()
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    payload = event.get("payload", {})
                    if event.get("event_type") == "order.placed":
                        placed[payload["order_id"]] = payload["channel_order_id"]
                    elif event.get("event_type") == "order.confirmed":
                        confirmed.setdefault(payload["order_id"], received)
            if len(confirmed) >= len(messages):
                everything.set()

    reader = asyncio.create_task(consume())
    started = time.perf_counter()
    try:
        for i, (key, value) in enumerate(messages):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[traffic.orders[i]["channel_order_id"]] = time.perf_counter()
            await producer.send(STOREFRONT_ORDERS, value=value, key=key)
        offered = len(messages) / (time.perf_counter() - started)
        await producer.flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle):  # (wait_for can swallow a cancellation: 3.11)
                await everything.wait()
    finally:
        stop.set()
        await reader
        await producer.stop()
        await consumer.stop()
    latencies = [(confirmed[oid] - sent[coid]) * 1000 for oid, coid in placed.items()
                 if oid in confirmed and coid in sent]
    return latencies, len(messages), offered


def run_latency(report: Report, info: RuntimeInfo, rate: float, seconds: float,
                settle: float = 30.0, log: Callable[[str], None] = print,
                target: bool = True) -> None:
    """Bench 4: p50/p95/p99 submission -> order.confirmed at a fixed offered load.

    Submissions not confirmed within ``settle`` seconds after the last send count as slower
    than anything seen (a percentile that falls on them is shown as beyond the window).
    ``target``: this is the issue's load (300/s), judged against p99 <= 150 ms.
    """
    traffic = Traffic.make(int(rate * seconds), f"lat{rate:.0f}", seed=int(rate))
    latencies, sent, offered = asyncio.run(_latency(info.kafka_bootstrap, traffic, rate, settle))
    missing = sent - len(latencies)
    everything = sorted(latencies) + [math.inf] * missing

    def at(p: float) -> float | None:
        value = percentile(everything, p)
        return None if value is None or math.isinf(value) else value

    where = f"at {rate:,.0f}/s"
    beyond = f"> {settle:.0f} s"
    note = (f"offered {offered:,.0f}/s for {seconds:.0f} s; {len(latencies)}/{sent} confirmed "
            f"within {settle:.0f} s after the last send")
    for p in (50.0, 95.0, 99.0):
        value = at(p)
        judged = target and p == 99
        report.add(Row("4 latency", f"{where}: submission -> order.confirmed p{p:.0f}", value, "ms",
                       note=note if p == 50 else "", shown=beyond,
                       target="<= 150" if judged else "",
                       met=(value is not None and value <= 150) if judged else None))
    report.add(Row("4 latency", f"{where}: max latency seen", max(latencies) if latencies else None,
                   "ms"))
    log(f"  latency at {rate:.0f}/s: p50 {at(50)}, p99 {at(99)} ms ({len(latencies)}/{sent})")


def runtime_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="oms-bench-run-"))
