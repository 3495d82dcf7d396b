"""The services' garbage-collector settings (shared/gctune.py)."""

from __future__ import annotations

import gc

import pytest

from shared import gctune
from shared.settings import OmsSettings


def test_a_started_service_freezes_what_exists_and_collects_young_objects_less_often(
        restored_gc: None) -> None:
    kept = [[n] for n in range(100)]  # long-lived objects of the started service
    gctune.tune(50_000)
    assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_freeze_count() >= len(kept)


def test_zero_keeps_pythons_thresholds(restored_gc: None) -> None:
    gctune.tune(0)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_default_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OmsSettings().gc_threshold == 50_000
    monkeypatch.setenv("OMS_GC_THRESHOLD", "0")
    assert OmsSettings().gc_threshold == 0
    monkeypatch.setenv("OMS_GC_THRESHOLD", "-1")
    with pytest.raises(ValueError, match="gc_threshold"):
        OmsSettings()


def test_the_collectors_counters_are_in_the_prometheus_text() -> None:
    before = gctune.render()
    gc.collect()
    after = gctune.render()
    counts = {line.split()[0]: int(line.split()[1]) for line in after.splitlines()}
    assert set(counts) == {f'oms_gc_{what}{{generation="{g}"}}' for g in range(3)
                           for what in ("collections_total", "collected_total", "threshold")}
    assert counts['oms_gc_threshold{generation="0"}'] == gc.get_threshold()[0]
    assert counts['oms_gc_collections_total{generation="2"}'] > int(
        next(line for line in before.splitlines()
             if line.startswith('oms_gc_collections_total{generation="2"}')).split()[1])
