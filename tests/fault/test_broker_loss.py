"""The broker is replaced by a fresh, empty one mid-traffic: history is republished, everything
converges and nothing is doubled."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from tests.fault.conftest import (
    Traffic,
    converge,
    dead_letters,
    doubled,
    expected,
    explain,
    new_runtime,
    query,
    seed,
    send,
    snapshot,
)


def intake_done(rt, messages: int) -> bool:  # type: ignore[no-untyped-def]
    rows = query(rt, "order", "SELECT count(*) FROM inbox WHERE topic = 'storefront.orders.v1'")
    return bool(rows[0][0] >= messages)


@pytest.mark.slow
def test_a_fresh_empty_broker_mid_traffic_converges_without_doubles() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="oms-fault-broker-"))
    flow = Traffic("BROKER")
    first = new_runtime(data_dir)
    first.start()
    try:
        seed(first)
        before = snapshot(first)
        early = [flow.wave(60) for _ in range(3)]
        for wave in early:
            send(first, wave)
        # the storefront's messages are taken in by the order service (a storefront resends what
        # the broker lost before that); the rest of the flow is still under way when it goes
        deadline = time.monotonic() + 180  # generous: a loaded machine is slow, not wrong
        while not intake_done(first, 2 * flow.sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert intake_done(first, 2 * flow.sent)
        midway = snapshot(first)
    finally:
        first.stop()  # the embedded broker goes with it: its topics are gone

    second = new_runtime(data_dir, fresh=False)  # same databases, a new empty broker
    second.start()
    try:
        send(second, early[0][:20])  # a storefront resends a few: no second effect
        send(second, flow.wave(60))
        want = expected(before, flow.sent)
        seen = converge(second, want, timeout=180)
        assert seen == want, f"midway {midway}: " + explain(second)
        assert doubled(second) == {}
        assert dead_letters(second) == dict.fromkeys(dead_letters(second), 0)
    finally:
        second.stop()
