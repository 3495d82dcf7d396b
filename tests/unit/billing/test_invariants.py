"""Billing's invariants over randomized order histories (pure domain, hypothesis).

For every order, after every step:
- invoiced (live) minus credited equals what the customer owes (the order's value less what
  was returned, nothing once cancelled), and the published facts say the same;
- recognised revenue (net) equals the shipped value minus returns (net);
- payments minus refunds equal the paid amount, and the paid amount splits into what pays the
  invoices and the customer's credit;
- voucher numbers are gapless per series.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.billing import domain
from services.billing.domain import Account, statement
from tests.unit.billing.builders import (
    ORDER_ID,
    VoucherBook,
    amended,
    cause,
    order,
    payment,
    returned,
    shipped,
)

CENT = D("0.01")
PRICES = st.decimals(min_value=D("0.00"), max_value=D("500.00"), places=2)
RATES = st.sampled_from(["0", "0.06", "0.09", "0.13"])
TERMS = st.sampled_from([("alipay", "prepaid"), ("card", "prepaid"),
                         ("credit_terms", "net_30"), ("bank_transfer", "net_30")])


@st.composite
def orders(draw):
    lines = draw(st.lists(st.tuples(st.integers(1, 4), PRICES, RATES), min_size=1, max_size=4))
    subtotal = sum((q * p for q, p, _ in lines), D(0))
    shares = draw(st.lists(st.decimals(min_value=D(0), max_value=D("0.4"), places=2), max_size=2))
    discounts = [str((subtotal * s / 2).quantize(CENT)) for s in shares]
    shipping = draw(st.decimals(min_value=D(0), max_value=D("20.00"), places=2))
    method, terms = draw(TERMS)
    placed = order([(f"S{n}", q, str(p), r) for n, (q, p, r) in enumerate(lines, start=1)],
                   discounts=discounts, shipping=str(shipping),
                   payment={"method": method, "terms": terms})
    if draw(st.booleans()) and placed.total > 1:
        fraction = draw(st.decimals(min_value=D("0.05"), max_value=D("0.9"), places=2))
        deposit = (placed.total * fraction).quantize(CENT)
        placed = placed.model_copy(update={"order_type": "presale", "payment": {
            "method": method, "terms": "deposit", "deposit_amount": str(deposit)}})
    return placed


class History:
    """The order as the order service would tell it, and what billing said back."""

    def __init__(self, placed):
        self.book = VoucherBook()
        self.placed = placed
        self.account = domain.keep_order(Account(ORDER_ID), placed, cause(), self.book).account
        self.events = []
        self.shipped = {line.line_no: 0 for line in placed.lines}
        self.back = {line.line_no: 0 for line in placed.lines}
        self.payments = 0
        self.cancelled = False

    def apply(self, decision):
        self.account = decision.account
        self.events.extend(decision.events)

    def of(self, event_type):
        return [e for e in self.events if e.event_type == event_type]


def _value(placed, kind):
    """Each line's share of the order's value (gross or net) once discounts are shared out,
    as an exact fraction: an independent model of what shipping and returning a unit is worth."""
    draft = domain.draft_invoice(placed)
    goods = [x for x in draft.lines if x.kind == "goods"]
    off = sum((getattr(x, kind) for x in draft.lines if x.kind == "discount"), D(0))
    weight = sum((x.gross for x in goods), D(0))
    return {line.line_no: getattr(g, kind) + (off * g.gross / weight if weight else 0)
            for line, g in zip(placed.lines, goods, strict=True)}


def check(h: History) -> None:
    now = statement(h.account)
    invoiced = bool(h.account.live_invoices)
    # 1. invoiced (live) - credited == what the customer owes.
    assert now.invoiced - now.credited == now.owed
    published = (sum((e.total for e in h.of("invoice.issued")), D(0))
                 - sum((e.total for e in h.of("invoice.voided")), D(0))
                 - sum((e.total for e in h.of("credit_note.issued")), D(0)))
    assert published == now.owed
    placed = h.account.order
    if h.cancelled:
        assert now.owed == 0
    elif invoiced:
        gross = _value(placed, "gross")
        returned_value = sum((gross[n] * r / line.quantity for line in placed.lines
                              for n, r in [(line.line_no, h.back[line.line_no])]), D(0))
        slack = CENT * (len(placed.lines) + 1) if returned_value else 0
        assert abs(now.owed - (placed.total - returned_value)) <= slack
        if all(h.back[x.line_no] == x.quantity for x in placed.lines):
            assert now.owed == placed.shipping_fee
    # 2. recognised revenue (net) == shipped value - returns (net).
    recognised = (sum((e.net for e in h.of("revenue.recognized")), D(0))
                  - sum((e.revenue_reversed for e in h.of("credit_note.issued")), D(0)))
    if any(h.shipped.values()):
        net = _value(placed, "net")
        kept = sum((net[x.line_no] * (h.shipped[x.line_no] - h.back[x.line_no]) / x.quantity
                    for x in placed.lines), D(0)) + placed.shipping_fee
        assert abs(recognised - kept) <= CENT * (len(placed.lines) + 1)
        if all(h.shipped[x.line_no] == x.quantity for x in placed.lines) and not any(
                h.back.values()):
            assert recognised == sum((i.net_total for i in h.account.live_invoices), D(0))
            assert sum((e.tax for e in h.of("revenue.recognized")), D(0)) == sum(
                (i.tax_total for i in h.account.live_invoices), D(0))
    else:
        assert recognised == 0
    # 3. payments - refunds == paid amount; it pays the invoices, the rest is the customer's.
    refunded = sum((e.amount for e in h.of("refund.issued")), D(0))
    assert sum((e.amount for e in h.of("payment.recorded")), D(0)) == h.payments
    assert h.payments - refunded == now.paid
    assert now.paid >= 0 and now.customer_credit >= 0
    if h.cancelled:
        assert now.paid == 0
    if invoiced and not h.cancelled:
        assert now.outstanding == max(now.owed - now.paid, D(0))
        assert now.customer_credit == max(now.paid - now.owed, D(0))
        assert now.settled == (now.outstanding == 0)
    for p in h.account.payments:
        assert 0 <= h.account.refunded(p.payment_id) <= p.amount
    # 4. gapless vouchers.
    for series, kind in (("INV", "invoice.issued"), ("CN", "credit_note.issued")):
        numbers = sorted(int(e.voucher_number.rsplit("-", 1)[1]) for e in h.of(kind))
        assert numbers == list(range(1, len(numbers) + 1)), series


ACTIONS = st.sampled_from(["confirm", "pay", "pay_rest", "amend", "ship", "ship", "cancel",
                          "return", "return"])


@given(placed=orders(), data=st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_billing_invariants_hold_over_random_histories(placed, data):
    h = History(placed)
    if data.draw(st.booleans()):
        h.apply(domain.confirm(h.account, cause(), h.book))
    check(h)
    for step in range(data.draw(st.integers(1, 12))):
        action = data.draw(ACTIONS)
        shipped_any = any(h.shipped.values())
        if action == "confirm":
            h.apply(domain.confirm(h.account, cause(), h.book))
        elif action in ("pay", "pay_rest"):
            owing = statement(h.account).outstanding
            amount = owing if action == "pay_rest" and owing > 0 else data.draw(
                st.decimals(min_value=CENT, max_value=D("800.00"), places=2))
            method = data.draw(st.sampled_from(["alipay", "card", "bank_transfer"]))
            h.apply(domain.record_payment(h.account, payment(f"P-{step}", str(amount), method),
                                          cause()))
            h.payments += amount
        elif action == "amend" and not shipped_any and not h.cancelled:
            current = h.account.order
            quantities = [data.draw(st.integers(1, 4)) for _ in current.lines]
            lines = [(x.sku, q, str(x.unit_price), str(x.tax_rate))
                     for x, q in zip(current.lines, quantities, strict=True)]
            after = order(lines, shipping=str(current.shipping_fee))
            subtotal = after.subtotal
            if subtotal < current.discount_total:
                continue
            after = after.model_copy(update={
                "total": subtotal - current.discount_total + current.shipping_fee})
            h.apply(domain.amend(h.account, amended(f"A-{step}", current, after), cause(),
                                 h.book))
            h.shipped = {x.line_no: 0 for x in h.account.order.lines}
            h.back = dict(h.shipped)
        elif action == "ship" and h.account.live_invoices and not h.cancelled:
            lines = []
            for x in h.account.order.lines:
                take = data.draw(st.integers(0, x.quantity - h.shipped[x.line_no]))
                if take:
                    lines.append((x.line_no, x.sku, take))
            if lines:
                h.apply(domain.recognize_shipment(h.account, shipped(f"S-{step}", *lines),
                                                  cause()))
                for n, _, q in lines:
                    h.shipped[n] += q
        elif action == "cancel" and not shipped_any:
            h.apply(domain.cancel(h.account, cause(), h.book))
            h.cancelled = True
        elif action == "return" and shipped_any and not h.cancelled:
            lines = []
            for x in h.account.order.lines:
                take = data.draw(st.integers(0, h.shipped[x.line_no] - h.back[x.line_no]))
                if take:
                    lines.append((x.sku, take))
                    h.back[x.line_no] += take
            if lines:
                h.apply(domain.take_return(h.account, returned(f"R-{step}", *lines), cause(),
                                           h.book))
        check(h)
