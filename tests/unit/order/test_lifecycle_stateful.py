"""Property-based: no sequence of commands drives an order into an illegal state (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.order.domain import fulfilment, lifecycle
from services.order.domain.lifecycle import IllegalTransition, InvalidCommand, Readiness, WrongRole
from services.order.domain.state import status
from shared.contract.storefront import PaymentCaptured
from tests.unit.order.factories import NOW, TWO_LEVELS, apply, lines, new_order

STATUSES = {"placed", "backordered", "pending_approval", "confirmed", "deposit_paid", "paid",
            "partially_shipped", "shipped", "delivered", "completed", "cancelled",
            "return_requested", "returned"}
ROLES = ["sales", "sales_director", "finance_director", "general_manager", "admin", "warehouse"]
ACTION_OF = {"approve": "approve", "reject": "reject", "ship": "ship", "deliver": "deliver",
             "complete": "complete", "cancel": "cancel", "request_return": "request_return",
             "receive_return": "receive_return"}


class OrderMachine(RuleBasedStateMachine):
    @initialize(kind=st.sampled_from(["standard", "presale", "group_buy", "cod", "approval"]))
    def place(self, kind: str) -> None:
        self.now = NOW
        self.counter = 0
        bundle_lines = lines(("X-100", 2, "199.00", "B1"), ("GIFT-MUG", 1, "0.00", "B1"),
                             ("TEA-500", 3, "88.00"))
        if kind == "presale":
            self.state = new_order("presale", "deposit", deposit_amount="50.00", order_lines=bundle_lines)
        elif kind == "cod":
            self.state = new_order("standard", "cod", order_lines=bundle_lines)
        elif kind == "approval":
            self.state = new_order(plan=TWO_LEVELS, order_lines=bundle_lines)
        else:
            self.state = new_order(kind, order_lines=bundle_lines)
        self.cancelled_shipments: tuple | None = None

    def attempt(self, action: str | None, decide) -> None:
        before = lifecycle.allowed_actions(self.state)
        try:
            events = decide()
        except (IllegalTransition, InvalidCommand, WrongRole):
            return
        if events and action is not None:
            assert action in before, f"{action} succeeded although only {before} were allowed"
        self.state = apply(self.state, events, self.now)

    def next_id(self) -> str:
        self.counter += 1
        return str(self.counter)

    @rule(reserved=st.booleans(), group_closed=st.booleans())
    def stock_reserved(self, reserved: bool, group_closed: bool) -> None:
        self.attempt(None, lambda: lifecycle.confirm_if_ready(self.state, Readiness(reserved, group_closed)))

    @rule()
    def shortage(self) -> None:
        self.attempt(None, lambda: lifecycle.on_stock_shortage(self.state, []))

    @rule(role=st.sampled_from(ROLES), reserved=st.booleans())
    def approve(self, role: str, reserved: bool) -> None:
        self.attempt("approve", lambda: lifecycle.approve(self.state, approver="u", role=role, comment=None,
                                                          now=self.now, readiness=Readiness(reserved)))

    @rule(role=st.sampled_from(ROLES), dice=st.integers(min_value=0, max_value=3))
    def reject(self, role: str, dice: int) -> None:
        if dice == 0:
            self.attempt("reject", lambda: lifecycle.reject(self.state, approver="u", role=role,
                                                            reason="no"))

    @rule(hours=st.integers(min_value=1, max_value=10))
    def time_passes(self, hours: int) -> None:
        self.now = self.now + timedelta(hours=hours)
        self.attempt(None, lambda: lifecycle.escalate_if_overdue(self.state, self.now))

    @rule(amount=st.sampled_from(["10.00", "50.00", "1000.00"]), kind=st.sampled_from(["full", "deposit"]))
    def payment(self, amount: str, kind: str) -> None:
        captured = PaymentCaptured(type="payment.captured", channel="tmall", channel_order_id="TM-1",
                                   payment_id=f"P{self.next_id()}", method="alipay",
                                   amount=Decimal(amount), kind=kind, captured_at=self.now)
        self.attempt(None, lambda: lifecycle.capture_payment(self.state, captured, "CNY"))

    @rule()
    def settled(self) -> None:
        self.attempt(None, lambda: lifecycle.on_settled(self.state, self.state.total, None))

    @rule(quantity=st.integers(min_value=1, max_value=4),
          sku=st.sampled_from(["X-100", "TEA-500", "GIFT-MUG"]), everything=st.booleans())
    def ship(self, quantity: int, sku: str, everything: bool) -> None:
        self.attempt("ship", lambda: fulfilment.ship(
            self.state, shipment_id=f"S{self.next_id()}", warehouse="WH", carrier="SF",
            tracking_number="T", lines=None if everything else [(sku, quantity)], now=self.now))

    @rule()
    def deliver(self) -> None:
        self.attempt("deliver", lambda: fulfilment.deliver(self.state, self.now))

    @rule()
    def complete(self) -> None:
        self.attempt("complete", lambda: fulfilment.complete(self.state, self.now, "x"))

    @rule(dice=st.integers(min_value=0, max_value=7))
    def cancel(self, dice: int) -> None:
        if dice == 0:  # rarely, so that sequences also reach shipping, delivery and returns
            self.attempt("cancel", lambda: fulfilment.cancel(self.state, reason="r", by="u",
                                                             request_id=None))

    @rule(quantity=st.integers(min_value=1, max_value=3), confirmed_change=st.booleans())
    def amend(self, quantity: int, confirmed_change: bool) -> None:
        new_lines = lines(("X-100", 2, "199.00", "B1"), ("GIFT-MUG", 1, "0.00", "B1"),
                          ("TEA-500", quantity, "88.00"))
        self.attempt(None, lambda: lifecycle.amend(self.state, request_id=f"A{self.next_id()}",
                                                   lines=new_lines, shipping_address=None, plan=None,
                                                   now=self.now))

    @rule(quantity=st.integers(min_value=1, max_value=3))
    def request_return(self, quantity: int) -> None:
        self.attempt("request_return", lambda: fulfilment.request_return(
            self.state, request_id=f"R{self.next_id()}", lines=[("TEA-500", quantity)], reason="r"))

    @rule()
    def receive_returns(self) -> None:
        for request_id, request in self.state.returns:
            if not request.received:
                self.attempt("receive_return", lambda rid=request_id: fulfilment.receive_return(
                    self.state, request_id=rid, warehouse="WH", now=self.now))

    @invariant()
    def status_is_known(self) -> None:
        assert status(self.state) in STATUSES

    @invariant()
    def never_ships_more_than_ordered(self) -> None:
        for line in self.state.lines:
            assert 0 <= self.state.shipped_quantity(line.line_no) <= line.quantity

    @invariant()
    def bundles_ship_together(self) -> None:
        members = [x for x in self.state.lines if x.gift_bundle == "B1"]
        ratios = {self.state.shipped_quantity(x.line_no) * 1.0 / x.quantity for x in members}
        assert len(ratios) <= 1, "a gift bundle was split"

    @invariant()
    def cancelled_orders_never_ship_afterwards(self) -> None:
        if self.state.cancelled:
            if self.cancelled_shipments is None:
                self.cancelled_shipments = self.state.shipped
                assert not self.state.shipped
            assert self.state.shipped == self.cancelled_shipments

    @invariant()
    def confirmation_needs_approval(self) -> None:
        if self.state.confirmed:
            assert self.state.order_approval in ("none", "approved")

    @invariant()
    def paid_needs_confirmation_and_prepaid_ships_paid(self) -> None:
        if self.state.paid:
            assert self.state.confirmed
        if self.state.any_shipped and self.state.payment_terms in ("prepaid", "deposit"):
            assert self.state.paid

    @invariant()
    def later_stages_imply_earlier_ones(self) -> None:
        s = self.state
        assert not s.delivered or s.fully_shipped
        assert not s.completed or s.delivered
        assert not s.any_shipped or s.confirmed
        shipped = s.shipped_by_sku()
        for sku, quantity in s.returned_or_requested_by_sku().items():
            assert quantity <= shipped.get(sku, 0)


OrderMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestOrderLifecycle = OrderMachine.TestCase
