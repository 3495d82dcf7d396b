"""The product catalog and SKU normalisation: "x100", "X 100" and "Ｘ－１００" all mean "X-100"."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shared.contract.sku import canonical_sku, match_key

DEMO_CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.demo.csv"
COLUMNS: tuple[str, ...] = ("sku", "name", "category", "tax_rate", "aliases", "low_stock_threshold",
                            "active")
REQUIRED_COLUMNS: tuple[str, ...] = ("sku", "name", "category", "tax_rate")
MAX_THRESHOLD = 2**31 - 1
_SURPLUS = "\0surplus"  # where DictReader puts fields beyond the header

_CONFUSABLE = str.maketrans("OIL", "011")


def _looks_like(key: str) -> str:
    """Fold letters typists confuse with digits, only for suggestions (never for matching)."""
    return key.translate(_CONFUSABLE)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    sku: str
    name: str
    category: str
    tax_rate: Decimal
    aliases: tuple[str, ...] = ()
    low_stock_threshold: int = 0
    active: bool = True

    def spellings(self) -> tuple[str, ...]:
        return (self.sku, *self.aliases)

    def row(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "category": self.category,
                "tax_rate": self.tax_rate, "aliases": list(self.aliases),
                "low_stock_threshold": self.low_stock_threshold, "active": self.active}


@dataclass(frozen=True, slots=True)
class SkuResolution:
    """What an incoming SKU resolved to: the item, or why not and the nearest known SKUs."""

    item: CatalogItem | None
    code: str | None = None
    suggestions: tuple[str, ...] = ()


class Catalog:
    """Items by SKU and every spelling's match key; an active item wins a key over an inactive one."""

    def __init__(self, items: Iterable[CatalogItem]) -> None:
        self.items = {item.sku: item for item in items}
        ranked: dict[str, tuple[tuple[bool, bool], CatalogItem]] = {}
        for item in self.items.values():
            for name in item.spellings():
                key, rank = match_key(name), (item.active, name == item.sku)
                if key not in ranked or rank > ranked[key][0]:
                    ranked[key] = (rank, item)
        self._by_key = {key: item for key, (_, item) in ranked.items()}

    def lookup(self, raw_sku: str) -> CatalogItem | None:
        """The item any spelling names, active or not (returns of discontinued goods, admin views)."""
        return self._by_key.get(match_key(raw_sku))

    def suggestions(self, raw_sku: str) -> tuple[str, ...]:
        folded = {_looks_like(k): k for k in self._by_key}
        near = difflib.get_close_matches(_looks_like(match_key(raw_sku)), list(folded), n=5, cutoff=0.6)
        return tuple(dict.fromkeys(self._by_key[folded[k]].sku for k in near))[:3]

    def resolve(self, raw_sku: str) -> SkuResolution:
        item = self.lookup(raw_sku)
        if item is None:
            return SkuResolution(None, "unknown_sku", self.suggestions(raw_sku))
        if not item.active:
            return SkuResolution(None, "inactive_sku")
        return SkuResolution(item)

    def conflicts(self, candidate: CatalogItem) -> list[str]:
        """Spellings of ``candidate`` that already mean another active SKU (refuse such a write)."""
        found = []
        for name in candidate.spellings():
            owner = self.lookup(name)
            if owner is not None and owner.sku != candidate.sku and owner.active:
                found.append(f'"{name}" already means {owner.sku}')
        return found

    def to_rows(self) -> list[dict[str, Any]]:
        return [item.row() for item in self.items.values()]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Catalog:
        return cls(CatalogItem(
            sku=str(row["sku"]), name=str(row["name"]), category=str(row.get("category") or ""),
            tax_rate=_plain(Decimal(str(row["tax_rate"]))), aliases=tuple(row.get("aliases") or ()),
            low_stock_threshold=int(row.get("low_stock_threshold") or 0),
            active=bool(row.get("active", True)),
        ) for row in rows)

    def __len__(self) -> int:
        return len(self.items)


def _plain(rate: Decimal) -> Decimal:
    """0.1300 from a NUMERIC(5,4) column reads as 0.13, as in the file (and in order events)."""
    return rate.normalize() if rate else Decimal(0)


@dataclass
class CatalogRef:
    """The live catalog of a running order service, swapped whole after each catalog write."""

    current: Catalog = field(default_factory=lambda: Catalog([]))


# ---- the catalog file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    line: int | None  # the file's line number (the header is line 1)
    column: str | None
    message: str


class CatalogError(ValueError):
    """A catalog file that cannot be loaded: every problem with its line and column."""

    def __init__(self, source: str, problems: list[CatalogProblem]) -> None:
        self.source, self.problems = source, problems
        super().__init__("\n".join(
            f"{source}:{p.line}: {p.column}: {p.message}" if p.line and p.column
            else f"{source}:{p.line}: {p.message}" if p.line else f"{source}: {p.message}"
            for p in problems))


def parse_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(str(path), [CatalogProblem(None, None, f"cannot read: {error}")]) from None
    return parse_catalog_text(text, source=str(path))


def parse_catalog_text(text: str, *, source: str = "catalog") -> Catalog:
    """``sku,name,category,tax_rate,aliases,low_stock_threshold,active`` rows (CONTRACT.md)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), restkey=_SURPLUS)
    header = [name.strip() for name in reader.fieldnames or ()]
    problems = _header_problems(header)
    if problems:
        raise CatalogError(source, problems)
    reader.fieldnames = header
    items: list[CatalogItem] = []
    owners: dict[str, tuple[str, str, int]] = {}  # match key -> (sku, spelling, line)
    for row in reader:
        line = reader.line_num
        item, row_problems = _parse_row(row, line)
        problems += row_problems
        if item is None:
            continue
        for name in dict.fromkeys(item.spellings()):
            key = match_key(name)
            owner = owners.get(key)
            kind = "sku" if name == item.sku else "alias"
            if owner is None:
                owners[key] = (item.sku, name, line)
            elif kind == "sku" and owner[1] == owner[0]:
                problems.append(CatalogProblem(line, "sku", f"SKU {item.sku} is listed again (first on "
                                               f"line {owner[2]} as {owner[0]}); list each SKU once"))
            elif owner[0] != item.sku:
                problems.append(CatalogProblem(line, "sku" if kind == "sku" else "aliases",
                                               f'{kind} "{name}" of {item.sku} collides with "{owner[1]}" '
                                               f"of {owner[0]} (line {owner[2]}); each spelling must "
                                               "mean one SKU"))
        items.append(item)
    if not items and not problems:
        problems.append(CatalogProblem(None, None, "has a header but no SKU rows"))
    if problems:
        raise CatalogError(source, problems)
    return Catalog(items)


def _header_problems(header: list[str]) -> list[CatalogProblem]:
    if not header:
        return [CatalogProblem(1, None, "is empty; accepted: a header row " + ",".join(COLUMNS))]
    problems = []
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        problems.append(CatalogProblem(1, None, f"header lacks {', '.join(missing)}; accepted header: "
                                       + ",".join(COLUMNS)))
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        problems.append(CatalogProblem(1, None, f"unknown column(s) {', '.join(unknown)}; accepted: "
                                       + ", ".join(COLUMNS)))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append(CatalogProblem(1, None, f"column(s) {', '.join(repeated)} appear twice"))
    return problems


def _parse_row(row: dict[str, Any], line: int) -> tuple[CatalogItem | None, list[CatalogProblem]]:
    problems: list[CatalogProblem] = []

    def problem(column: str | None, message: str) -> None:
        problems.append(CatalogProblem(line, column, message))

    if row.get(_SURPLUS):
        problem(None, f"has more fields than the header ({len(COLUMNS)} at most)")
    value = {name: (row.get(name) or "").strip() for name in COLUMNS}
    sku = canonical_sku(value["sku"])
    if not match_key(sku):
        problem("sku", f"{value['sku']!r} is not a SKU; accepted: letters and digits, e.g. X-100")
    if not value["name"]:
        problem("name", "is empty; accepted: the product's name")
    rate = _tax_rate(value["tax_rate"], problem)
    threshold_text = value["low_stock_threshold"] or "0"
    if not re.fullmatch(r"[0-9]{1,10}", threshold_text) or int(threshold_text) > MAX_THRESHOLD:
        problem("low_stock_threshold", f"{threshold_text!r} is not a whole number >= 0, e.g. 20")
    active = (value["active"] or "true").lower()
    if active not in ("true", "false"):
        problem("active", f"{value['active']!r} is not allowed; accepted: true, false")
    aliases = tuple(dict.fromkeys(a.strip() for a in value["aliases"].split("|") if a.strip()))
    for alias in aliases:
        if not match_key(alias):
            problem("aliases", f"{alias!r} is not a SKU spelling; accepted: letters and digits")
    if problems or rate is None:
        return None, problems
    return CatalogItem(sku, value["name"], value["category"], rate, aliases, int(threshold_text),
                       active == "true"), []


def _tax_rate(text: str, problem: Callable[[str | None, str], None]) -> Decimal | None:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal("NaN")
    places = rate.as_tuple().exponent
    if not rate.is_finite() or not Decimal(0) <= rate < Decimal(1) or (isinstance(places, int)
                                                                      and places < -4):
        problem("tax_rate", f"{text!r} is not a decimal fraction in [0, 1) with at most 4 places, "
                "e.g. 0.13")
        return None
    return rate
