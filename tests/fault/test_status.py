"""``oms status`` against the running system: every instance up, nothing behind once traffic is
handled; a stopped service shows as down (exit 1) with its backlog growing on the broker."""

from __future__ import annotations

import json
import time
from typing import Any

from typer.testing import CliRunner

from shared.cli.main import app
from shared.runtime.supervisor import Runtime
from tests.fault.conftest import SERVICES, Traffic, converge, expected, query, send, snapshot


def status(rt: Runtime) -> tuple[int, dict[str, dict[str, Any]]]:
    result = CliRunner().invoke(app, ["status", "--json"],
                                env={"OMS_DATA_DIR": str(rt.info.data_dir)})
    assert result.exit_code in (0, 1), result.output
    found = json.loads(result.stdout)
    assert found["problems"] == [] and found["healthy"] == (result.exit_code == 0), found
    return result.exit_code, {r["service"]: r for r in found["services"]}


def settled(rt: Runtime, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Status once nothing is behind or waiting to be published (the relays and consumers
    commit a moment after the counts show) and each group has its one consumer (a consumer an
    earlier fault test killed stays a member until its session times out)."""
    deadline = time.monotonic() + timeout
    while True:
        code, seen = status(rt)
        if code == 0 and all(s["lag"] == 0 and s["unpublished"] == 0 and s["members"] == 1
                             for s in seen.values()):
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(1.0)


def test_status_shows_every_service_up_and_a_stopped_ones_backlog(runtime: Runtime) -> None:
    seen = settled(runtime)
    assert list(seen) == list(SERVICES)
    for name, s in seen.items():
        assert s["healthy"] and s["problems"] == [], s
        [instance] = s["instances"]
        assert instance["up"] and instance["pid"] == runtime.pid(name)
        pending = query(runtime, name, "SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL")
        assert s["dead_letters"] == pending[0][0]

    before = snapshot(runtime)
    flow = Traffic("STATUS")
    runtime.stop_service("notify")
    try:
        send(runtime, flow.wave(20))
        deadline = time.monotonic() + 60
        while True:
            code, seen = status(runtime)
            if seen["notify"]["lag"]:
                break
            assert time.monotonic() < deadline, seen["notify"]
            time.sleep(1.0)
        assert code == 1
        [down] = seen["notify"]["instances"]
        assert not down["up"] and down["problem"].startswith("not answering")
        assert seen["order"]["healthy"]
    finally:
        runtime.start_service("notify")
        runtime.wait_healthy(120)
    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=120) == want
    assert settled(runtime)["notify"]["lag"] == 0
