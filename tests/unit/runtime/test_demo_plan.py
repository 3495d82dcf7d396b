"""The demo's day: however many orders ``oms demo --orders`` asks for, none is submitted after
now (the order service refuses those as ``in_future``, and the demo waited for them in vain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.demo.plan import plan_day

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("orders", [1, 1000, 1500, 3000, 20_000])
def test_every_order_is_submitted_within_the_last_eight_hours(orders: int) -> None:
    plan = plan_day(orders, now=NOW)
    times = [datetime.fromisoformat(m["submitted_at"]) for m in plan.standard]
    assert len(times) == orders
    assert min(times) > NOW - timedelta(hours=8)
    assert max(times) <= NOW - timedelta(minutes=10)
    assert times == sorted(times)
    if orders <= 1000:  # a day with room for them keeps them 20 s apart, as before
        assert times[1:] == [t + timedelta(seconds=20) for t in times[:-1]]
