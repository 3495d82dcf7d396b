"""The product catalog and SKU normalisation: "x100", "X 100" and "Ｘ－１００" all mean "X-100"."""

from __future__ import annotations

import csv
import difflib
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEMO_CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.demo.csv"

_SEPARATORS = str.maketrans("", "", " -_./\u00b7\u2010\u2011\u2012\u2013\u2014\u2212\u30fc")


_CONFUSABLE = str.maketrans("OIL", "011")


def _looks_like(key: str) -> str:
    """Fold letters typists confuse with digits, only for suggestions (never for matching)."""
    return key.translate(_CONFUSABLE)


def match_key(sku: str) -> str:
    """The comparison form of a SKU: NFKC (full-width to ASCII), upper case, no separators."""
    return unicodedata.normalize("NFKC", sku).upper().translate(_SEPARATORS)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    sku: str
    name: str
    category: str
    tax_rate: Decimal
    aliases: tuple[str, ...] = ()
    low_stock_threshold: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class SkuResolution:
    """What an incoming SKU resolved to: the item, or why not and the nearest known SKUs."""

    item: CatalogItem | None
    code: str | None = None
    suggestions: tuple[str, ...] = ()


class Catalog:
    def __init__(self, items: list[CatalogItem]) -> None:
        self.items = {item.sku: item for item in items}
        self._by_key: dict[str, CatalogItem] = {}
        for item in items:
            for name in (item.sku, *item.aliases):
                self._by_key[match_key(name)] = item

    def resolve(self, raw_sku: str) -> SkuResolution:
        item = self._by_key.get(match_key(raw_sku))
        if item is None:
            folded = {_looks_like(k): k for k in self._by_key}
            near = difflib.get_close_matches(_looks_like(match_key(raw_sku)), list(folded), n=5,
                                             cutoff=0.6)
            suggestions = tuple(dict.fromkeys(self._by_key[folded[k]].sku for k in near))[:3]
            return SkuResolution(None, "unknown_sku", suggestions)
        if not item.active:
            return SkuResolution(None, "inactive_sku")
        return SkuResolution(item)

    def __len__(self) -> int:
        return len(self.items)


class CatalogError(ValueError):
    """A catalog file row that cannot be loaded (file, line, column, rule)."""


def parse_catalog(path: Path) -> Catalog:
    items: list[CatalogItem] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        required = {"sku", "name", "category", "tax_rate"}
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise CatalogError(f"{path}: header lacks columns {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            sku = (row.get("sku") or "").strip().upper()
            if not sku:
                raise CatalogError(f"{path}:{lineno}: sku is empty")
            try:
                rate = Decimal((row.get("tax_rate") or "").strip())
            except InvalidOperation:
                raise CatalogError(
                    f"{path}:{lineno}: tax_rate {row.get('tax_rate')!r} is not a decimal fraction"
                ) from None
            if not Decimal(0) <= rate < Decimal(1):
                raise CatalogError(f"{path}:{lineno}: tax_rate must be in [0, 1), e.g. 0.13")
            threshold = (row.get("low_stock_threshold") or "0").strip() or "0"
            if not threshold.isdigit():
                raise CatalogError(f"{path}:{lineno}: low_stock_threshold must be a whole number")
            active = (row.get("active") or "true").strip().lower()
            if active not in ("true", "false"):
                raise CatalogError(f"{path}:{lineno}: active must be true or false")
            aliases = tuple(a.strip() for a in (row.get("aliases") or "").split("|") if a.strip())
            items.append(CatalogItem(sku, (row.get("name") or "").strip(),
                                     (row.get("category") or "").strip(), rate, aliases,
                                     int(threshold), active == "true"))
    return Catalog(items)
