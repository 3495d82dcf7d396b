"""Low-stock thresholds per SKU, read from the catalog file (only ``sku`` and ``low_stock_threshold``)."""

from __future__ import annotations

import csv
from pathlib import Path

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "deploy" / "catalog.demo.csv"


def load_thresholds(path: Path | None = None) -> dict[str, int]:
    """SKU -> threshold; SKUs with a blank threshold get no alerts.

    The catalog's own validation belongs to the order service; here a threshold that is not a
    whole number >= 0 is refused with the file, line and value, so a typo cannot mute alerts.
    """
    source = path or DEMO_CATALOG
    thresholds: dict[str, int] = {}
    with source.open(newline="", encoding="utf-8") as handle:
        for lineno, row in enumerate(csv.DictReader(handle), start=2):
            sku = (row.get("sku") or "").strip()
            raw = (row.get("low_stock_threshold") or "").strip()
            if not sku or not raw:
                continue
            try:
                threshold = int(raw)
            except ValueError:
                threshold = -1
            if threshold < 0:
                raise ValueError(f"{source}:{lineno}: low_stock_threshold {raw!r} for {sku} must be "
                                 "a whole number >= 0")
            thresholds[sku] = threshold
    return thresholds
