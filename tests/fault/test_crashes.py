"""kill -9 every service during sustained traffic: after the restarts nothing is lost or doubled."""

from __future__ import annotations

import signal
import time

from shared.runtime.supervisor import Runtime
from tests.fault.conftest import (
    SERVICES,
    Traffic,
    converge,
    dead_letters,
    doubled,
    expected,
    explain,
    send,
    snapshot,
)

WAVE = 40


def test_kill_9_each_service_during_traffic_loses_and_doubles_nothing(runtime: Runtime) -> None:
    before = snapshot(runtime)
    letters = dead_letters(runtime)
    flow = Traffic("KILL")
    victims = [*SERVICES, *SERVICES]  # every service twice, one after another
    for victim in victims:
        send(runtime, flow.wave(WAVE))
        time.sleep(0.7)  # let the wave get under way, then crash a service mid-batch
        runtime.kill_service(victim, signal.SIGKILL)
    send(runtime, flow.wave(WAVE))
    runtime.wait_healthy(timeout=120)
    assert all(runtime.restarts(name) >= 2 for name in SERVICES), runtime.status()

    want = expected(before, flow.sent)
    seen = converge(runtime, want, timeout=180)
    assert seen == want, explain(runtime)
    assert doubled(runtime) == {}
    assert dead_letters(runtime) == letters  # a crash or a cut connection is no poison
