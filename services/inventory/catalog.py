"""What inventory reads from the catalog file: low-stock thresholds per SKU (``sku``,
``low_stock_threshold``) and the SKUs' names (``sku``, ``aliases``), by which a SKU people type at a
receipt is the catalog's own."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from shared.clock import Clock
from shared.contract.sku import canonical_sku, match_key
from shared.logging import get_logger

log = get_logger(__name__)

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "deploy" / "catalog.demo.csv"
RECHECK_EVERY = timedelta(seconds=5)


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


def load_names(path: Path | None = None) -> dict[str, str]:
    """Each catalog SKU and alias (as ``match_key`` compares them) -> the catalog SKU. The order
    service validates the catalog; a row it would refuse is only skipped here."""
    names: dict[str, str] = {}
    with (path or DEMO_CATALOG).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            sku = canonical_sku(row.get("sku") or "")
            if not match_key(sku):
                continue
            names.setdefault(match_key(sku), sku)
            for alias in (row.get("aliases") or "").split("|"):
                if match_key(alias):
                    names.setdefault(match_key(alias), sku)
    return names


def _stamp(path: Path) -> bytes | None:
    """A digest of the file's content (None: unreadable). Content, not mtime and size: an edit
    within the file system's mtime resolution that keeps the size ("20" -> "25") still counts."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return None


class CatalogThresholds(Mapping[str, int]):
    """The catalog file's thresholds, followed while the service runs.

    The file is edited in place and loaded with ``oms catalog load``; inventory does not read the
    order service's catalog table, so it watches the file: at most once per ``every`` (on the
    injected clock) it reads the file and parses it again when its content changed. A file that
    cannot be read or has a bad threshold keeps the previous thresholds (logged once per change
    of the file). A refused file at start still stops the service (a typo must not mute alerts).
    """

    def __init__(self, path: Path | None, clock: Clock, every: timedelta = RECHECK_EVERY) -> None:
        self.path = path or DEMO_CATALOG
        self._clock, self._every = clock, every
        self._stamp = _stamp(self.path)
        self._thresholds: Mapping[str, int] = load_thresholds(self.path)
        self._names: Mapping[str, str] = load_names(self.path)
        self._checked_at: datetime = clock.now()

    def current(self) -> Mapping[str, int]:
        """The thresholds now (re-read first when due and the file changed); never mutated."""
        now = self._clock.now()
        if not self._checked_at <= now < self._checked_at + self._every:  # due, or clock went back
            self._checked_at = now
            self.reload_if_changed()
        return self._thresholds

    def names(self) -> Mapping[str, str]:
        """The catalog's SKUs and aliases by ``match_key`` (re-read as ``current``)."""
        self.current()
        return self._names

    def reload_if_changed(self) -> bool:
        """Parse the file again if its content changed since the last look; True when it did."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            thresholds = load_thresholds(self.path)
            names = load_names(self.path)
        except (OSError, ValueError) as error:
            log.warning("low-stock thresholds not reloaded; the previous ones stay",
                        file=str(self.path), error=str(error))
            return False
        self._thresholds, self._names = thresholds, names
        log.info("low-stock thresholds reloaded", skus=len(thresholds), file=str(self.path))
        return True

    def __getitem__(self, sku: str) -> int:
        return self.current()[sku]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current())

    def __len__(self) -> int:
        return len(self.current())
