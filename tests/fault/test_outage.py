"""A service down longer than reconcile's grace while orders keep coming: the orders it owes
answers for wait for it (no discrepancy per order, each alerting people, for one outage), and
once it is back every order converges with nothing raised, lost or doubled."""

from __future__ import annotations

import time

import httpx

from shared.contract.topics import BILLING_EVENTS
from shared.demo.runner import DEMO_ENV
from shared.runtime.supervisor import Runtime
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

GRACE = float(DEMO_ENV["OMS_RECONCILE_GRACE_SECONDS"])  # the fault runtime's
DETECTED = "SELECT count(*) FROM events WHERE event_type = 'discrepancy.detected'"


def silent_seconds(rt: Runtime, topic: str) -> float:
    """What reconcile's /metrics says of ``topic``'s silence (0 when it is not silent)."""
    page = httpx.get(f"{rt.info.url('reconcile')}/metrics", timeout=30).text
    line = f'oms_reconcile_silent_seconds{{topic="{topic}"}} '
    return next((float(row[len(line):]) for row in page.splitlines() if row.startswith(line)), 0.0)


def test_billing_down_past_the_grace_raises_nothing_for_the_orders_it_owes(
        runtime: Runtime) -> None:
    flow = Traffic("OUTAGE")
    before = snapshot(runtime)
    send(runtime, flow.wave(20))  # reconcile hears billing answer confirmations (and learns it)
    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=120) == want, explain(runtime)
    raised = query(runtime, "reconcile", DETECTED)[0][0]

    runtime.stop_service("billing")
    try:
        down_until = time.monotonic() + GRACE + 15  # the grace-period job runs every second
        while time.monotonic() < down_until:
            send(runtime, flow.wave(4))
            time.sleep(2.0)
        assert silent_seconds(runtime, BILLING_EVENTS) > GRACE
        assert query(runtime, "reconcile", DETECTED)[0][0] == raised
    finally:
        runtime.start_service("billing")
        runtime.wait_healthy(120)
    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=150) == want, explain(runtime)
    assert silent_seconds(runtime, BILLING_EVENTS) == 0.0
    assert query(runtime, "reconcile", DETECTED)[0][0] == raised  # not even raised and resolved
    assert doubled(runtime) == {}
