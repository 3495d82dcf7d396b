"""The approval rules file (TOML): parsed and checked, every problem said at once."""

from __future__ import annotations

import difflib
import tomllib
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

from services.order.domain.approval import (
    AMOUNT_TESTS,
    KINDS,
    ApprovalLevel,
    ApprovalRule,
    RulesError,
    RuleSet,
    parse_sla,
)
from shared.auth import ROLES
from shared.contract.storefront import OrderType, PaymentTerms
from shared.money import MINOR_UNITS

# ---- the rules file (TOML) ---------------------------------------------------------------

_TOP_KEYS = ("version", "rule")
_RULE_KEYS = ("id", "description", "applies_to", "when", "level")
_LIST_KEYS: dict[str, tuple[str, ...] | None] = {  # None: open lists (tiers and channels grow)
    "customer_tier_in": None, "order_type_in": get_args(OrderType), "channel_in": None,
    "payment_terms_in": get_args(PaymentTerms),
}
_DECIMAL_KEYS = (*(key for key, _, _ in AMOUNT_TESTS), "discount_ratio_above")
_WHEN_KEYS = (*_DECIMAL_KEYS, "currency", *_LIST_KEYS)
_LEVEL_KEYS = ("role", "sla", "escalate_to")
_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "a list",
               dict: "a table", datetime: "a date-time", date: "a date"}


def _a(value: Any) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


class _Reader:
    """Walks the parsed TOML document and collects every problem before giving up."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def unknown_keys(self, where: str, table: dict[str, Any], accepted: tuple[str, ...], name: str) -> None:
        for key in (key for key in table if key not in accepted):
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            self.fail(where, f'unknown key "{key}" in {name}{hint}; accepted: {", ".join(accepted)}')

    def decimal(self, where: str, key: str, value: Any) -> Decimal | None:
        if isinstance(value, float):
            self.fail(where, f'{key}: {value} is a TOML float; write it as a decimal string: "{value}"')
            return None
        try:  # type() rather than isinstance(): a TOML boolean is no amount
            number = Decimal(value.strip() if isinstance(value, str) else value if type(value) is int
                             else "not a number")
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number < 0:
            shown = f'"{value}"' if isinstance(value, str) else _a(value)
            self.fail(where, f'{key}: {shown} is not a decimal number of 0 or more; write e.g. "100000.00"')
            return None
        return number

    def names(self, where: str, key: str, value: Any, accepted: tuple[str, ...] | None
              ) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(where, f'{key}: must be a non-empty list of strings such as ["a", "b"]')
            return None
        for item in value:
            if accepted is not None and item not in accepted:
                self.fail(where, f'{key}: "{item}" unknown; accepted: {", ".join(accepted)}')
        return tuple(value)

    def role(self, where: str, key: str, value: Any) -> str | None:
        if isinstance(value, str) and value in ROLES:
            return value
        shown = ("missing" if value is None else f'"{value}" unknown' if isinstance(value, str)
                 else f"must be a role name, not {_a(value)}")
        self.fail(where, f'{key} {shown}; accepted: {", ".join(ROLES)}')
        return None

    def level(self, where: str, raw: Any) -> ApprovalLevel | None:
        if not isinstance(raw, dict):
            self.fail(where, "must be a table: write [[rule.level]] with role, sla and escalate_to")
            return None
        self.unknown_keys(where, raw, _LEVEL_KEYS, "[[rule.level]]")
        role = self.role(where, "role", raw.get("role"))
        escalate_to = self.role(where, "escalate_to", raw.get("escalate_to"))
        if role is not None and role == escalate_to:
            self.fail(where, f'escalate_to "{role}" is the level\'s own role; name the role above it')
        text = raw.get("sla")
        sla = parse_sla(text) if isinstance(text, str) else None
        if sla is None:
            shown = ("missing" if text is None else f'"{text}" not understood' if isinstance(text, str)
                     else f"must be a string, not {_a(text)}")
            self.fail(where, f'sla {shown}; write a duration such as "30m", "4h", "2d" or "1d12h"')
        if role is None or escalate_to is None or sla is None or role == escalate_to:
            return None
        return ApprovalLevel(role, sla, escalate_to)

    def when(self, where: str, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail(where, "when: must be a table: write [rule.when] with the conditions under it")
            return {}
        self.unknown_keys(where, raw, _WHEN_KEYS, "[rule.when]")
        found: dict[str, Any] = {k: self.decimal(where, k, raw[k]) for k in _DECIMAL_KEYS if k in raw}
        found |= {key: self.names(where, key, raw[key], ok) for key, ok in _LIST_KEYS.items() if key in raw}
        if (ratio := found.get("discount_ratio_above")) is not None and ratio >= 1:
            self.fail(where, f'discount_ratio_above: {ratio} is not a fraction below 1; write e.g. "0.3"')
        if "currency" in raw:
            found["currency"] = currency = raw["currency"]
            if not isinstance(currency, str) or currency not in MINOR_UNITS:
                shown = f'"{currency}"' if isinstance(currency, str) else _a(currency)
                self.fail(where, f"currency {shown} unknown; accepted: {', '.join(MINOR_UNITS)}")
        floor = max((v for k in ("total_at_least", "total_above") if (v := found.get(k)) is not None),
                    default=None)
        if floor is not None and (below := found.get("total_below")) is not None and below <= floor:
            self.fail(where, f"total_below {below} is not above {floor}: the rule could never apply")
        return found

    def rule(self, index: int, raw: Any, seen: dict[str, int]) -> ApprovalRule | None:
        if not isinstance(raw, dict):
            self.fail(f"rule {index}", "must be a table: write each rule as [[rule]]")
            return None
        rule_id = raw.get("id")
        where = f'rule "{rule_id}"' if isinstance(rule_id, str) and rule_id.strip() else f"rule {index}"
        if not isinstance(rule_id, str) or not rule_id.strip():
            self.fail(where, 'id missing: give every rule a unique id such as id = "large-orders"')
        elif rule_id in seen:
            self.fail(where, f"id used twice (rules {seen[rule_id]} and {index}); ids must be unique")
        else:
            seen[rule_id] = index
        self.unknown_keys(where, raw, _RULE_KEYS, "[[rule]]")
        if not isinstance(description := raw.get("description", ""), str):
            self.fail(where, f"description: must be a string, not {_a(description)}")
        applies_to = raw.get("applies_to", ["order"])
        if not isinstance(applies_to, list) or not applies_to or any(k not in KINDS for k in applies_to):
            self.fail(where, f'applies_to: {applies_to!r} not accepted; write ["order"], ["amendment"] '
                             'or ["order", "amendment"]')
        conditions = self.when(where, raw.get("when", {}))
        raw_levels = raw.get("level")
        if not isinstance(raw_levels, list) or not raw_levels:
            self.fail(where, "needs at least one [[rule.level]] (role, sla, escalate_to)")
            raw_levels = []
        levels = [self.level(f"{where} level {n}", level) for n, level in enumerate(raw_levels, start=1)]
        roles = [level.role for level in levels if level is not None]
        for role in sorted({role for role in roles if roles.count(role) > 1}):
            self.fail(where, f'role "{role}" appears in two levels; each role approves once')
        if self.problems:
            return None
        return ApprovalRule(id=str(rule_id), description=str(description), applies_to=tuple(applies_to),
                            levels=tuple(level for level in levels if level is not None), **conditions)

    def ruleset(self, doc: dict[str, Any]) -> RuleSet | None:
        self.unknown_keys("", doc, _TOP_KEYS, "the top level")
        version = doc.get("version")
        if isinstance(version, date):  # an unquoted 2026-11-01 is a TOML date: take it as written
            version = version.isoformat()
        if not isinstance(version, str) or not version.strip():
            shown = ("missing" if version is None else "empty" if isinstance(version, str)
                     else f"must be a string, not {_a(version)}")
            self.fail("version", f'{shown}; put version = "2026-11-01" at the top '
                                 "(it is recorded in every approval event)")
        raw_rules = doc.get("rule", [])
        if not isinstance(raw_rules, list):
            self.fail("rule", "write each rule as [[rule]] (an array of tables), not [rule]")
            raw_rules = []
        seen: dict[str, int] = {}
        rules = [self.rule(index, raw, seen) for index, raw in enumerate(raw_rules, start=1)]
        if self.problems:
            return None
        return RuleSet(str(version), tuple(rule for rule in rules if rule is not None), self.source)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """A rule set from TOML text; RulesError listing every problem (file, rule, key, what works)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError([f"{source}: not valid TOML: {error}"]) from None
    reader = _Reader(source)
    ruleset = reader.ruleset(doc)
    if ruleset is None:
        raise RulesError(reader.problems)
    return ruleset


def load_rules(path: Path) -> RuleSet:
    """Read and parse a rules file (the one file read of this module, done once at start)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError([f"{path}: cannot read the rules file: {error.strerror or error}"]) from None
    except UnicodeDecodeError:
        raise RulesError([f"{path}: not UTF-8 text"]) from None
    return parse_rules(text, source=str(path))
