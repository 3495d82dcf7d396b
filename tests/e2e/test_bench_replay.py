"""Bench 5 replays every rebuildable projection from the history the five services wrote, and
each replay matches its live database (the bench's figures are only worth something if so)."""

from __future__ import annotations

import pytest

from shared.bench.replayall import REPLAYED
from shared.bench.results import Sizes
from shared.bench.suite import run

pytestmark = pytest.mark.e2e


def test_every_projection_is_replayed_and_matches_live(postgres_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_BENCH_DATABASE_URL", postgres_url)
    lines: list[str] = []
    report = run(Sizes.tiny(), only="replay", log=lines.append)
    replays = [r for r in report.rows if r.name.startswith("oms replay ")]
    assert [r.name.split()[2] for r in replays] == list(REPLAYED), lines
    assert all("matches the live projection" in r.note for r in replays), [
        (r.name, r.note) for r in replays]
    assert all(r.value and r.value > 0 for r in replays)
    total = next(r for r in report.rows if r.name.startswith("all projections"))
    assert total.target == "<= 60" and total.value and total.value > 0 and total.met is not None
    e2e = next(r for r in report.rows if r.bench.startswith("3"))
    assert e2e.value and e2e.value > 0  # the history came from orders that went all the way
    # where the machine's cores went, the embedded broker included
    cpu = {r.name.split(": ")[1]: r.value for r in report.rows if "CPU per order: " in r.name}
    assert {"order", "inventory", "billing", "notify", "reconcile", "postgresql",
            "broker"} <= set(cpu), cpu
    assert cpu["broker"] is not None and cpu["broker"] > 0, cpu
