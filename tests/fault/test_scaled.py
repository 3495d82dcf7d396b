"""Two instances of every service in one consumer group (``oms run --scale``): the partitions are
shared out, and killing instances mid-traffic (their partitions move to the other instance and
back) loses and doubles nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from shared.metrics import scraped_total
from shared.runtime.supervisor import Runtime
from tests.fault.conftest import (
    SERVICES,
    Traffic,
    converge,
    dead_letters,
    doubled,
    expected,
    explain,
    seeded,
    send,
    snapshot,
)

WAVE = 40


@pytest.fixture(scope="module")
def scaled() -> Iterator[Runtime]:
    yield from seeded("oms-scaled-", scale=dict.fromkeys(SERVICES, 2))


def counted(rt: Runtime, metric: str) -> dict[str, float]:
    """A counter of each instance since it started (its /metrics), all labels added up."""
    found: dict[str, float] = {}
    with httpx.Client(timeout=10) as client:
        for name, where in rt.info.all_instances.items():
            found[name] = scraped_total(client.get(f"{where.url}/metrics").text, metric)
    return found


def test_two_instances_of_each_service_share_the_work(scaled: Runtime) -> None:
    assert sorted(scaled.info.all_instances) == sorted(
        name for service in SERVICES for name in (service, f"{service}-2"))
    assert len({i.http_port for i in scaled.info.all_instances.values()}) == 2 * len(SERVICES)
    before = snapshot(scaled)
    flow = Traffic("SCALE")
    send(scaled, flow.wave(WAVE))
    seen = converge(scaled, expected(before, flow.sent), timeout=120)
    assert seen == expected(before, flow.sent), explain(scaled)
    consumed = counted(scaled, "oms_consumer_messages_total")
    idle = [name for name, count in consumed.items() if count == 0]
    assert idle == [], f"instances that were given no partition: {idle}"
    # One consumer group: each message goes to one instance. (Two groups would hand every message
    # to both, and the second would find half of what it got already handled: duplicates. A
    # rebalance while the instances join may hand a partition over with a few uncommitted.)
    duplicates = counted(scaled, "oms_consumer_duplicates_total")
    for service in SERVICES:
        got = consumed[service] + consumed[f"{service}-2"]
        again = duplicates[service] + duplicates[f"{service}-2"]
        assert again <= 0.1 * got, f"{service}: {again:g} of {got:g} messages were duplicates"
    assert doubled(scaled) == {}


def test_killing_instances_mid_traffic_moves_partitions_and_loses_nothing(scaled: Runtime) -> None:
    before = snapshot(scaled)
    letters = dead_letters(scaled)
    flow = Traffic("SCALEKILL")
    for victim in ("order-2", "inventory-1", "billing-2", "notify-1", "reconcile-2", "order-1"):
        send(scaled, flow.wave(WAVE))
        time.sleep(0.7)
        scaled.kill_service(victim, signal.SIGKILL)
    # One instance held down while traffic flows: its partitions go to the other one.
    scaled.stop_service("billing-1")
    send(scaled, flow.wave(WAVE))
    want = expected(before, flow.sent)
    time.sleep(3.0)
    scaled.start_service("billing-1")
    scaled.wait_healthy(timeout=180)
    assert scaled.restarts("order") == 2, scaled.status()  # each instance of order once
    assert scaled.restarts("order-1") == 1 and scaled.restarts("order-2") == 1
    seen = converge(scaled, want, timeout=240)
    assert seen == want, explain(scaled)
    assert doubled(scaled) == {}
    assert dead_letters(scaled) == letters
