"""Whether the services agree about an order: each consistency rule names its kind of finding.

Rules from issue 5 (the kind each one raises):

- ``placed_not_seen``: other services reported on the order, order.placed never arrived.
- ``awaiting_confirmation``: placed, not (yet) confirmed: approval, backorder or group buy.
  The only *waiting* kind: the order is pending, but nothing disagrees, so no discrepancy.
- ``confirmed_not_reserved``: confirmed (presale: deposit paid) but no stock.reserved.
- ``reserved_quantities``: held (reserved - released - deducted) + deducted units per SKU differ
  from the ordered units (the amended lines when amended); not checked for cancelled orders.
- ``shipped_quantities``: more units shipped than ordered.
- ``confirmed_not_invoiced``: confirmed but no invoice.issued.
- ``invoice_currency``: an invoice in another currency than the order.
- ``invoice_total``: live invoices (issued minus voided; a presale's deposit and balance
  invoices together) minus amendment credit notes differ from the order total (amended total).
- ``paid_mismatch``: once order.paid: payments kept (recorded - refunded, overpayments set
  aside) differ from what is owed (live invoices - credit notes).
- ``shipped_revenue_not_recognised``: a shipment without revenue.recognized for its shipment id.
- ``returned_no_credit_note``: more returns received than credit notes for returns.
- ``cancelled_stock_not_released``, ``cancelled_invoice_open``, ``cancelled_not_refunded``:
  a cancelled order still holds stock, still owes on an invoice that was neither voided nor
  credited, or kept payments that were not refunded. A cancelled order that never got a
  reservation or invoice is consistent.
- ``confirmation_not_notified``: confirmed, no customer notification of the confirmation.

The generic rule, "an event seen by one service and not by another": FOLLOW_UPS lists facts one
service published that another must answer, matched by the id both carry; an unanswered fact is
a finding of the follow-up's kind. Together with ``placed_not_seen`` (reconcile itself missed the
order) and ``paid_not_marked`` (billing settled, the order service never said order.paid), that
is what "seen by one and not the other" means here; each kind is still raised only after the
grace period, so facts in flight are not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from services.reconcile.domain.facts import OrderFacts
from shared.money import Money, MoneyError

Status = Literal["consistent", "pending"]
CONSISTENT: Status = "consistent"
PENDING: Status = "pending"

# Kinds that describe a normal wait in the order's life, not a disagreement between services.
WAITING_KINDS: frozenset[str] = frozenset({"awaiting_confirmation"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not (yet) add up: what was expected and what the facts say."""

    kind: str
    reason: str
    expected: str
    actual: str

    @property
    def waiting(self) -> bool:
        return self.kind in WAITING_KINDS


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A fact of one service that another must answer, matched by an id both carry."""

    kind: str
    cause: str
    answer: str
    answered_by: str
    causes: Callable[[OrderFacts], Set[str]]
    answers: Callable[[OrderFacts], Set[str]]


FOLLOW_UPS: tuple[FollowUp, ...] = (
    FollowUp("shipped_revenue_not_recognised", "order.shipped", "revenue.recognized", "billing",
             lambda f: set(f.shipments), lambda f: set(f.revenue)),
    FollowUp("shipped_not_deducted", "order.shipped", "stock.deducted", "inventory",
             lambda f: set(f.shipments), lambda f: f.deducted_shipments),
)


@dataclass(frozen=True, slots=True)
class Assessment:
    status: Status
    findings: tuple[Finding, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.findings)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.findings)

    @property
    def discrepancies(self) -> tuple[Finding, ...]:
        """Findings that are disagreements (raised after the grace period), not waits."""
        return tuple(f for f in self.findings if not f.waiting)


def assess(facts: OrderFacts) -> Assessment:
    """``consistent`` when every service agrees about the order; else ``pending`` with findings.

    Findings follow the flow, so a missing step is named once instead of every consequence of
    it; each kind appears at most once.
    """
    if not facts.placed:
        found: list[Finding] = [Finding("placed_not_seen", "order.placed not seen", "order.placed",
                                        "only other services' facts")]
    elif facts.cancelled:
        found = _cancellation(facts)
    else:
        found = [*_confirmation(facts), *_stock(facts), *_invoices(facts), *_payments(facts),
                 *_follow_ups(facts), *_returns(facts), *_notifications(facts)]
    return Assessment(PENDING if found else CONSISTENT, tuple(found))


def _confirmation(facts: OrderFacts) -> list[Finding]:
    if facts.confirmed:
        return []
    waiting = " (backordered)" if facts.backordered else ""
    return [Finding("awaiting_confirmation", f"placed but not confirmed{waiting}", "order.confirmed",
                    "backordered" if facts.backordered else "not confirmed")]


def _stock(facts: OrderFacts) -> list[Finding]:
    found: list[Finding] = []
    expected = facts.confirmed and (not facts.presale or facts.deposit_paid)
    if expected and not facts.reservations:
        why = "deposit paid" if facts.presale else "confirmed"
        found.append(Finding("confirmed_not_reserved", f"{why} but no stock reserved",
                             "stock.reserved", "none"))
    elif facts.reservations:
        ordered, held, deducted = facts.current_ordered, facts.held, facts.deducted
        differ = [(sku, held.get(sku, 0) + deducted.get(sku, 0), ordered.get(sku, 0))
                  for sku in sorted(set(held) | set(ordered))
                  if held.get(sku, 0) + deducted.get(sku, 0) != ordered.get(sku, 0)]
        if differ:
            found.append(Finding(
                "reserved_quantities",
                ", ".join(f"reserved {sku} x{has} != ordered x{wants}" for sku, has, wants in differ),
                _units((sku, wants) for sku, _, wants in differ),
                _units((sku, has) for sku, has, _ in differ)))
    ordered, shipped = facts.current_ordered, facts.shipped
    over = [(sku, units) for sku, units in sorted(shipped.items()) if units > ordered.get(sku, 0)]
    if over:
        found.append(Finding(
            "shipped_quantities",
            ", ".join(f"shipped {sku} x{units} > ordered x{ordered.get(sku, 0)}" for sku, units in over),
            _units((sku, ordered.get(sku, 0)) for sku, _ in over), _units(over)))
    return found


def _invoices(facts: OrderFacts) -> list[Finding]:
    if not facts.invoices:
        return ([Finding("confirmed_not_invoiced", "confirmed but no invoice", "invoice.issued", "none")]
                if facts.confirmed else [])
    found: list[Finding] = []
    currencies = sorted({i.currency for i in facts.live_invoices.values()} - {facts.currency})
    if currencies:
        found.append(Finding("invoice_currency", f"invoice currency {', '.join(currencies)} "
                             f"!= order currency {facts.currency}", str(facts.currency),
                             ", ".join(currencies)))
    order_total = facts.current_total if facts.current_total is not None else Decimal(0)
    invoiced = facts.invoiced_total - facts.credited("amended")
    if invoiced != order_total:
        label = "invoice total" if len(facts.live_invoices) == 1 else "invoiced total"
        what = "amended order total" if facts.amended else "order total"
        found.append(Finding("invoice_total", f"{label} {money(invoiced, facts.currency)} "
                             f"!= {what} {money(order_total, facts.currency)}",
                             money(order_total, facts.currency), money(invoiced, facts.currency)))
    return found


def _payments(facts: OrderFacts) -> list[Finding]:
    owed, kept = facts.net_invoiced, facts.net_paid
    if facts.paid:
        if not facts.payments:
            return [Finding("paid_mismatch", "order.paid seen but no payment recorded",
                            money(owed, facts.currency), "no payment.recorded")]
        if kept != owed:
            return [Finding("paid_mismatch", f"paid {money(kept, facts.currency)} "
                            f"!= invoiced {money(owed, facts.currency)}",
                            money(owed, facts.currency), money(kept, facts.currency))]
        return []
    if facts.confirmed and facts.live_invoices and facts.payments and kept >= owed:
        return [Finding("paid_not_marked", "paid in full but no order.paid", "order.paid",
                        f"paid {money(kept, facts.currency)} of {money(owed, facts.currency)}")]
    return []


def _follow_ups(facts: OrderFacts) -> list[Finding]:
    found: list[Finding] = []
    for rule in FOLLOW_UPS:
        causes, answers = rule.causes(facts), rule.answers(facts)
        missing = sorted(causes - answers)
        if missing:
            reason = {"shipped_revenue_not_recognised": "shipped but revenue not recognised"}.get(
                rule.kind, f"{rule.cause} not answered by {rule.answered_by} ({rule.answer})")
            found.append(Finding(rule.kind, f"{reason}: {', '.join(missing)}",
                                 f"{rule.answer} for {', '.join(sorted(causes))}",
                                 f"{rule.answer} for {', '.join(sorted(causes & answers)) or 'none'}"))
    return found


def _returns(facts: OrderFacts) -> list[Finding]:
    received = len(facts.returns)
    credited = sum(1 for c in facts.credit_notes.values() if c.reason == "returned")
    if received > credited:
        return [Finding("returned_no_credit_note",
                        f"returned ({received}) but no credit note ({credited} for returns)",
                        f"{received} credit notes for returns", f"{credited}")]
    return []


def _notifications(facts: OrderFacts) -> list[Finding]:
    if not facts.confirmed or facts.confirmation_notified:
        return []
    failures = facts.confirmation_failures
    actual = f"failed: {'; '.join(failures)}" if failures else "none"
    return [Finding("confirmation_not_notified", "no customer notification of the confirmation",
                    "notification.sent to the customer for order.confirmed", actual)]


def _cancellation(facts: OrderFacts) -> list[Finding]:
    found: list[Finding] = []
    held = {sku: units for sku, units in facts.held.items() if units > 0}
    if held:
        found.append(Finding("cancelled_stock_not_released",
                             f"cancelled but stock not released: {_units(held.items())}",
                             "nothing held", _units(held.items())))
    owed = facts.net_invoiced
    if owed > 0:
        open_amount = money(owed, facts.currency)
        found.append(Finding("cancelled_invoice_open",
                             f"cancelled but invoice not voided or credited (open {open_amount})",
                             money(Decimal(0), facts.currency), open_amount))
    kept = facts.net_paid
    if kept > 0:
        found.append(Finding("cancelled_not_refunded",
                             f"cancelled but paid {money(kept, facts.currency)} not refunded",
                             f"refunded {money(facts.paid_total, facts.currency)}",
                             f"refunded {money(facts.paid_total - kept, facts.currency)}"))
    return found


def _units(pairs: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{sku} x{units}" for sku, units in pairs) or "none"


def money(amount: Decimal, currency: str | None) -> str:
    """An amount as the decimal string of its currency (``398.00``)."""
    if currency is None:
        return str(amount)
    try:
        return str(Money(amount, currency).amount)
    except MoneyError:
        return str(amount)
