"""Clocks: the manual clock moves only when told to and only holds timezone-aware instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.clock import Clock, ManualClock, SystemClock

START = datetime(2026, 11, 21, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(START)
    assert clock.now() == START
    assert clock.now() == START
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    assert clock.now() == START + timedelta(hours=2)


def test_manual_clock_can_be_set_to_an_aware_instant() -> None:
    clock = ManualClock(START)
    later = datetime(2026, 12, 1, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later


def test_manual_clock_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))
    assert clock.now() == START


def test_system_clock_is_aware_utc() -> None:
    clocks: list[Clock] = [SystemClock(), ManualClock(START)]
    for clock in clocks:
        assert clock.now().tzinfo is not None
    assert SystemClock().now().utcoffset() == timedelta(0)
