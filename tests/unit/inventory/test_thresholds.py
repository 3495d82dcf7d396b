"""Low-stock thresholds follow the catalog file while inventory runs (no restart), re-read at most
once per recheck period on the injected clock, and a bad file keeps the thresholds it had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.inventory.catalog import RECHECK_EVERY, CatalogThresholds

HEADER = "sku,name,category,tax_rate,aliases,low_stock_threshold,active\n"
START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def write(path: Path, **thresholds: str) -> None:
    rows = [f"{sku.replace('_', '-')},{sku},c,0.13,,{value},true\n" for sku, value in thresholds.items()]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.csv"
    write(path, X_100="20", MUG="")
    return path


def test_a_changed_file_is_read_again_once_the_recheck_period_passed(catalog: Path) -> None:
    clock = Clock()
    thresholds = CatalogThresholds(catalog, clock)
    assert dict(thresholds) == {"X-100": 20} and "MUG" not in thresholds
    write(catalog, X_100="25", MUG="3")  # edited, then `oms catalog load`
    clock.at += RECHECK_EVERY / 2
    assert thresholds.current() == {"X-100": 20}  # not looked at again yet
    clock.at += RECHECK_EVERY
    assert thresholds.current() == {"X-100": 25, "MUG": 3}
    assert thresholds["MUG"] == 3 and len(thresholds) == 2


def test_an_unchanged_file_is_not_read_again(catalog: Path) -> None:
    clock = Clock()
    thresholds = CatalogThresholds(catalog, clock)
    first = thresholds.current()
    clock.at += RECHECK_EVERY * 3
    assert thresholds.current() is first
    assert thresholds.reload_if_changed() is False


def test_a_bad_or_missing_file_keeps_the_previous_thresholds(catalog: Path) -> None:
    clock = Clock()
    thresholds = CatalogThresholds(catalog, clock, every=timedelta(seconds=1))
    write(catalog, X_100="twenty")
    clock.at += timedelta(seconds=1)
    assert thresholds.current() == {"X-100": 20}
    catalog.unlink()
    clock.at += timedelta(seconds=1)
    assert thresholds.current() == {"X-100": 20}
    write(catalog, X_100="7")  # fixed: taken at the next look
    clock.at += timedelta(seconds=1)
    assert thresholds.current() == {"X-100": 7}


def test_a_clock_set_back_looks_again(catalog: Path) -> None:
    clock = Clock()
    thresholds = CatalogThresholds(catalog, clock)
    write(catalog, X_100="8")
    clock.at -= timedelta(hours=1)  # a replay's clock starts over at the first event
    assert thresholds.current() == {"X-100": 8}


def test_a_bad_file_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write(path, X_100="-1")
    with pytest.raises(ValueError, match="low_stock_threshold '-1' for X-100"):
        CatalogThresholds(path, Clock())
