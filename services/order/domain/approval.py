"""Approval rules: which orders and amendments need whose approval, and when a wait escalates."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from shared.contract.payloads import OrderPlaced

Kind = Literal["order", "amendment"]
KINDS: tuple[Kind, ...] = get_args(Kind)


class RulesError(ValueError):
    """A rules file that cannot be used: every problem found, each naming file, rule and key."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class ApprovalLevel:
    """One approver in the chain: who approves, how long they have, who hears when they do not."""

    role: str
    sla: timedelta
    escalate_to: str


def describe_route(levels: Iterable[ApprovalLevel]) -> str:
    """``sales_director(4h) -> finance_director(4h)``."""
    return " -> ".join(f"{level.role}({format_sla(level.sla)})" for level in levels)


@dataclass(frozen=True, slots=True)
class ApprovalFacts:
    """What the rules look at. For an amendment, the amounts are those of the amended order."""

    kind: Kind
    total: Decimal
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    customer_tier: str
    order_type: str
    channel: str
    payment_terms: str

    @property
    def discount_ratio(self) -> Decimal:
        """discount_total / subtotal; 0 for an order with nothing to discount."""
        return self.discount_total / self.subtotal if self.subtotal else Decimal(0)

    @classmethod
    def of_order(cls, placed: OrderPlaced, kind: Kind = "order") -> ApprovalFacts:
        """The facts of a placed order (for an amendment, ``replace`` the amounts afterwards)."""
        return cls(kind=kind, total=placed.total, currency=placed.currency, subtotal=placed.subtotal,
                   discount_total=placed.discount_total,
                   customer_tier=str(placed.customer.get("tier") or "regular"),
                   order_type=placed.order_type, channel=placed.channel,
                   payment_terms=str(placed.payment.get("terms") or ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRule:
    """A rule: when every given condition holds, the order waits for ``levels`` in turn."""

    id: str
    description: str = ""
    applies_to: tuple[Kind, ...] = ("order",)
    total_at_least: Decimal | None = None
    total_above: Decimal | None = None
    total_below: Decimal | None = None
    currency: str | None = None
    customer_tier_in: tuple[str, ...] | None = None
    order_type_in: tuple[str, ...] | None = None
    channel_in: tuple[str, ...] | None = None
    payment_terms_in: tuple[str, ...] | None = None
    discount_ratio_above: Decimal | None = None
    levels: tuple[ApprovalLevel, ...]

    def reasons(self, facts: ApprovalFacts) -> tuple[str, ...] | None:
        """Why this rule applies to ``facts``, condition by condition; None when it does not."""
        if facts.kind not in self.applies_to or self.currency not in (None, facts.currency):
            return None
        said = [f"currency is {self.currency}"] if self.currency else []
        for key, words, holds in AMOUNT_TESTS:
            threshold = getattr(self, key)
            if threshold is not None:
                if not holds(facts.total, threshold):
                    return None
                said.append(f"total {facts.total} {facts.currency} is {words} {threshold}")
        for key, label, attribute in _CHOICES:
            allowed, value = getattr(self, key), getattr(facts, attribute)
            if allowed is not None:
                if value not in allowed:
                    return None
                said.append(f'{label} "{value}" is one of: {", ".join(allowed)}')
        if self.discount_ratio_above is not None:
            if not facts.discount_ratio > self.discount_ratio_above:
                return None
            ratio = format(facts.discount_ratio.quantize(Decimal("0.0001")).normalize(), "f")
            said.append(f"discount ratio {ratio} ({facts.discount_total} of "
                        f"{facts.subtotal}) is above {self.discount_ratio_above}")
        return tuple(said) or (f"the rule has no conditions: it applies to every {facts.kind}",)

    def describe_conditions(self) -> tuple[str, ...]:
        """The conditions in words, for listings (``oms rules check``)."""
        said = [f"{kind}s" for kind in self.applies_to]
        said += [f"currency {self.currency}"] if self.currency else []
        said += [f"total {words} {getattr(self, key)}" for key, words, _ in AMOUNT_TESTS
                 if getattr(self, key) is not None]
        said += [f"{label} in {', '.join(getattr(self, key))}" for key, label, _ in _CHOICES
                 if getattr(self, key) is not None]
        ratio = self.discount_ratio_above
        return (*said, *([f"discount ratio above {ratio}"] if ratio is not None else []))


AMOUNT_TESTS: tuple[tuple[str, str, Callable[[Decimal, Decimal], bool]], ...] = (
    ("total_at_least", "at least", operator.ge), ("total_above", "above", operator.gt),
    ("total_below", "below", operator.lt),
)
_CHOICES: tuple[tuple[str, str, str], ...] = (  # rule field, words, ApprovalFacts field
    ("customer_tier_in", "customer tier", "customer_tier"), ("order_type_in", "order type", "order_type"),
    ("channel_in", "channel", "channel"), ("payment_terms_in", "payment terms", "payment_terms"),
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one file, in priority order (the first rule that applies wins)."""

    version: str
    rules: tuple[ApprovalRule, ...]
    source: str = "<rules>"

    @classmethod
    def empty(cls) -> RuleSet:
        """No rules: every order and amendment is approved automatically."""
        return cls(version="none", rules=(), source="<no rules>")


@dataclass(frozen=True, slots=True)
class ApprovalPlan:
    """The approvals an order needs, which rule (and rules version) asked for them, and why."""

    rule_id: str
    rules_version: str
    levels: tuple[ApprovalLevel, ...]
    reasons: tuple[str, ...]


def evaluate(rules: RuleSet, facts: ApprovalFacts) -> ApprovalPlan | None:
    """The plan of the first rule that applies; None means approved automatically."""
    for rule in rules.rules:
        if (reasons := rule.reasons(facts)) is not None:
            return ApprovalPlan(rule.id, rules.version, rule.levels, reasons)
    return None


# ---- escalation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An approval waiting at one level (``level_index`` from 0) and its escalations so far
    (without ``last_escalated_at`` they count as raised on time, one SLA period apart)."""

    order_id: str
    level_index: int
    role: str
    requested_at: datetime
    sla: timedelta
    escalate_to: str
    escalations: int = 0
    last_escalated_at: datetime | None = None

    def escalated(self, at: datetime) -> PendingApproval:
        """The same wait after one more escalation raised at ``at``."""
        return replace(self, escalations=self.escalations + 1, last_escalated_at=at)


def escalation_deadline(pending: PendingApproval) -> datetime:
    """When the next escalation is due: one SLA after the request, then, while nobody decides,
    one SLA after the previous escalation (a reminder to the same ``escalate_to`` role per SLA
    period). With ``last_escalated_at`` given, a scheduler that was stopped for hours catches up
    with one escalation, not one per missed period.
    """
    if pending.escalations and pending.last_escalated_at is not None:
        return pending.last_escalated_at + pending.sla
    return pending.requested_at + pending.sla * (pending.escalations + 1)


def overdue(pending: PendingApproval, now: datetime) -> bool:
    """True once ``now`` is strictly past the escalation deadline."""
    return now > escalation_deadline(pending)


def due_escalations(pendings: Iterable[PendingApproval], now: datetime) -> list[PendingApproval]:
    """The waits to escalate now, in the order given."""
    return [pending for pending in pendings if overdue(pending, now)]


# ---- SLAs as written in rules files --------------------------------------------------------

_SLA = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_sla(text: str) -> timedelta | None:
    """``"30m"``, ``"4h"``, ``"2d"``, ``"1d12h"`` (``"45s"`` for demos) as a timedelta; None when
    not understood or 0."""
    match = _SLA.fullmatch(text.replace(" ", "").lower())
    days, hours, minutes, seconds = (int(part or 0) for part in (match.groups() if match else (0,) * 4))
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return delta if delta > timedelta(0) else None


def format_sla(sla: timedelta) -> str:
    days, rest = divmod(int(sla.total_seconds()), 24 * 3600)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
