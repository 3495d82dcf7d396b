"""The order aggregate's state, folded from its own events (facts are never refused here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from shared.contract.order_events import (
    OrderAmended,
    OrderApprovalEscalated,
    OrderApprovalRequested,
    OrderApproved,
    OrderCancelled,
    OrderReturned,
    OrderReturnRequested,
    OrderShipped,
)
from shared.contract.payloads import OrderLine, OrderPaymentCaptured, OrderPlaced

PREPAID_TERMS = ("prepaid", "deposit")  # these orders ship only once paid in full


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """The approval an order is waiting for: which level of which rule, since when, until when."""

    kind: str
    request_id: str | None
    rule_id: str
    rules_version: str
    level: int
    levels: int
    role: str
    requested_at: datetime
    due_at: datetime
    sla_seconds: int
    escalate_to: str
    escalations: int = 0
    last_escalated_at: datetime | None = None
    plan_levels: tuple[dict[str, Any], ...] = ()
    amendment: dict[str, Any] | None = None
    approved_by: tuple[str, ...] = ()

    def roles_allowed(self) -> tuple[str, ...]:
        """Who may decide now: the level's role, its escalation role once escalated, an admin."""
        roles = [self.role]
        if self.escalations:
            roles.append(self.escalate_to)
        return (*roles, "admin")


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    lines: tuple[tuple[str, int], ...]
    received: bool = False


@dataclass(frozen=True, slots=True)
class OrderState:
    order_id: str
    version: int = 0
    placed: OrderPlaced | None = None
    lines: tuple[OrderLine, ...] = ()
    shipping_address: dict[str, Any] = field(default_factory=dict)
    subtotal: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    backordered: bool = False
    approval: PendingApproval | None = None
    order_approval: str = "none"  # none (not needed) | pending | approved | rejected
    confirmed: bool = False
    payment_ids: frozenset[str] = frozenset()
    captured_total: Decimal = Decimal(0)
    deposit_paid: bool = False
    paid: bool = False
    shipped: tuple[tuple[int, int], ...] = ()  # (line_no, quantity shipped)
    shipment_ids: frozenset[str] = frozenset()
    delivered: bool = False
    completed: bool = False
    cancelled: bool = False
    returns: tuple[tuple[str, ReturnRequest], ...] = ()
    amendment_requests: frozenset[str] = frozenset()
    # The version of the last order.amended that raised the total (0: none). Such an amendment
    # reopens the payment: a settlement billing decided before it no longer pays the order.
    total_raised_at: int = 0
    # Where the order's log stood when this state was read or written: (version, hash of the
    # last event), for the store's next append; not a fact of the order (not compared).
    head: tuple[int, str | None] | None = field(default=None, compare=False)

    @property
    def exists(self) -> bool:
        return self.placed is not None

    @property
    def channel(self) -> str:
        return self.placed.channel if self.placed else ""

    @property
    def currency(self) -> str:
        return self.placed.currency if self.placed else ""

    @property
    def content_hash(self) -> str:
        return self.placed.content_hash if self.placed else ""

    @property
    def order_type(self) -> str:
        return self.placed.order_type if self.placed else ""

    @property
    def payment_terms(self) -> str:
        return str(self.placed.payment.get("terms", "")) if self.placed else ""

    @property
    def deposit_amount(self) -> Decimal | None:
        raw = self.placed.payment.get("deposit_amount") if self.placed else None
        return Decimal(str(raw)) if raw is not None else None

    def shipped_quantity(self, line_no: int) -> int:
        return sum(q for n, q in self.shipped if n == line_no)

    def remaining(self, line: OrderLine) -> int:
        return line.quantity - self.shipped_quantity(line.line_no)

    @property
    def any_shipped(self) -> bool:
        return bool(self.shipped)

    @property
    def fully_shipped(self) -> bool:
        return bool(self.lines) and all(self.remaining(line) <= 0 for line in self.lines)

    def shipped_by_sku(self) -> dict[str, int]:
        by_line = {line.line_no: line.sku for line in self.lines}
        totals: dict[str, int] = {}
        for line_no, quantity in self.shipped:
            sku = by_line.get(line_no, "?")
            totals[sku] = totals.get(sku, 0) + quantity
        return totals

    def returned_or_requested_by_sku(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for _, request in self.returns:
            for sku, quantity in request.lines:
                totals[sku] = totals.get(sku, 0) + quantity
        return totals

    def return_request(self, request_id: str) -> ReturnRequest | None:
        return dict(self.returns).get(request_id)


def status(state: OrderState) -> str:
    """One word for where the order stands (queries, 409 answers); the flags above are the truth."""
    if not state.exists:
        return "new"
    if state.cancelled:
        return "cancelled"
    if state.returns:
        return "returned" if all(r.received for _, r in state.returns) else "return_requested"
    for flag, name in ((state.completed, "completed"), (state.delivered, "delivered"),
                       (state.fully_shipped, "shipped"), (state.any_shipped, "partially_shipped"),
                       (state.paid, "paid")):
        if flag:
            return name
    if state.confirmed:
        return "deposit_paid" if state.deposit_paid else "confirmed"
    if state.order_approval == "pending":
        return "pending_approval"
    return "backordered" if state.backordered else "placed"


def _returns_with(state: OrderState, request_id: str, request: ReturnRequest
                  ) -> tuple[tuple[str, ReturnRequest], ...]:
    return (*[(k, v) for k, v in state.returns if k != request_id], (request_id, request))


class Changes(TypedDict, total=False):
    """What one event changes in an ``OrderState`` (the fields it sets; the rest stay)."""

    placed: OrderPlaced
    lines: tuple[OrderLine, ...]
    shipping_address: dict[str, Any]
    subtotal: Decimal
    total: Decimal
    backordered: bool
    approval: PendingApproval | None
    order_approval: str
    confirmed: bool
    payment_ids: frozenset[str]
    captured_total: Decimal
    deposit_paid: bool
    paid: bool
    shipped: tuple[tuple[int, int], ...]
    shipment_ids: frozenset[str]
    delivered: bool
    completed: bool
    cancelled: bool
    returns: tuple[tuple[str, ReturnRequest], ...]
    amendment_requests: frozenset[str]
    total_raised_at: int


def evolve(state: OrderState, event_type: str, payload: dict[str, Any], version: int,
           occurred_at: datetime | None = None) -> OrderState:
    """Apply one stored event to the state: one copy with the event's changes and version
    (``dataclasses.replace`` of the 25 fields is most of what a fold costs)."""
    handler = _EVOLVERS.get(event_type)
    changes = handler(state, payload, occurred_at, version) if handler else Changes()
    return replace(state, version=version, **changes)


def _placed(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    placed = OrderPlaced.model_validate(payload)
    return Changes(placed=placed, lines=tuple(placed.lines),
                   shipping_address=dict(placed.shipping_address), subtotal=placed.subtotal,
                   total=placed.total)


def _approval_requested(state: OrderState, payload: dict[str, Any], at: datetime | None, _: int
                        ) -> Changes:
    event = OrderApprovalRequested.model_validate(payload)
    previous = state.approval.approved_by if state.approval else ()
    pending = PendingApproval(
        kind=event.kind, request_id=event.request_id, rule_id=event.rule_id,
        rules_version=event.rules_version, level=event.level, levels=event.levels, role=event.role,
        requested_at=at or event.due_at, due_at=event.due_at, sla_seconds=event.sla_seconds,
        escalate_to=event.escalate_to, plan_levels=tuple(event.plan_levels),
        amendment=event.amendment, approved_by=previous if event.level else (),
    )
    approval = "pending" if event.kind == "order" else state.order_approval
    requests = state.amendment_requests | ({event.request_id} if event.request_id else set())
    return Changes(approval=pending, order_approval=approval, amendment_requests=requests)


def _approved(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    event = OrderApproved.model_validate(payload)
    if state.approval is None:
        return Changes()
    pending = replace(state.approval, approved_by=(*state.approval.approved_by, event.approver))
    if not event.final:
        return Changes(approval=pending)
    approval = "approved" if event.kind == "order" else state.order_approval
    return Changes(approval=None, order_approval=approval)


def _approval_rejected(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int
                       ) -> Changes:
    kind = payload.get("kind", "order")
    return Changes(approval=None,
                   order_approval="rejected" if kind == "order" else state.order_approval)


def _escalated(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int
               ) -> Changes:
    event = OrderApprovalEscalated.model_validate(payload)
    if state.approval is None:
        return Changes()
    return Changes(approval=replace(state.approval, escalations=event.escalations,
                                    last_escalated_at=event.escalated_at))


def _amended(state: OrderState, payload: dict[str, Any], _: datetime | None, version: int
             ) -> Changes:
    event = OrderAmended.model_validate(payload)
    after = event.after
    lines = tuple(OrderLine.model_validate(x) for x in after.get("lines", [])) or state.lines
    raised = event.raises_total
    return Changes(lines=lines,
                   shipping_address=dict(after.get("shipping_address") or state.shipping_address),
                   subtotal=Decimal(str(after.get("subtotal", state.subtotal))),
                   total=event.total_after,
                   amendment_requests=state.amendment_requests | {event.request_id},
                   # paid for the order as it stood: the raised total is owed until billing
                   # settles it again (order.paid once more)
                   paid=state.paid and not raised,
                   total_raised_at=version if raised else state.total_raised_at)


def _amendment_refused(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int
                       ) -> Changes:
    request_id = str(payload.get("request_id"))
    changes = Changes(amendment_requests=state.amendment_requests | {request_id})
    pending = state.approval
    if pending is not None and pending.kind == "amendment" and pending.request_id == request_id:
        changes["approval"] = None  # the change no longer waits for anyone
    return changes


def _captured(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    event = OrderPaymentCaptured.model_validate(payload)
    return Changes(payment_ids=state.payment_ids | {event.payment_id},
                   captured_total=state.captured_total + event.amount)


def _shipped(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    event = OrderShipped.model_validate(payload)
    shipped = (*state.shipped, *((line.line_no, line.quantity) for line in event.lines))
    return Changes(shipped=shipped, shipment_ids=state.shipment_ids | {event.shipment_id})


def _return_requested(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int
                      ) -> Changes:
    event = OrderReturnRequested.model_validate(payload)
    request = ReturnRequest(tuple((x.sku, x.quantity) for x in event.lines))
    return Changes(returns=_returns_with(state, event.request_id, request))


def _returned(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    event = OrderReturned.model_validate(payload)
    request = ReturnRequest(tuple((x.sku, x.quantity) for x in event.lines), received=True)
    return Changes(returns=_returns_with(state, event.request_id, request))


def _cancelled(state: OrderState, payload: dict[str, Any], _: datetime | None, __: int) -> Changes:
    OrderCancelled.model_validate(payload)
    return Changes(cancelled=True, approval=None)


Evolver = Callable[[OrderState, dict[str, Any], datetime | None, int], Changes]


def _setting(changes: Changes) -> Evolver:
    """An event that sets the same fields whatever it says (never changed by the caller)."""
    return lambda state, payload, at, version: changes


_EVOLVERS: dict[str, Evolver] = {
    "order.placed": _placed,
    "order.backordered": _setting(Changes(backordered=True)),
    "order.approval_requested": _approval_requested,
    "order.approved": _approved,
    "order.approval_rejected": _approval_rejected,
    "order.approval_escalated": _escalated,
    "order.confirmed": _setting(Changes(confirmed=True, backordered=False)),
    "order.amended": _amended,
    "order.amendment_refused": _amendment_refused,
    "order.payment_captured": _captured,
    "order.deposit_paid": _setting(Changes(deposit_paid=True)),
    "order.paid": _setting(Changes(paid=True)),
    "order.shipped": _shipped,
    "order.delivered": _setting(Changes(delivered=True)),
    "order.completed": _setting(Changes(completed=True)),
    "order.cancelled": _cancelled,
    "order.return_requested": _return_requested,
    "order.returned": _returned,
}


def fold(order_id: str, events: list[tuple[str, dict[str, Any], int, datetime | None]]) -> OrderState:
    state = OrderState(order_id)
    for event_type, payload, version, occurred_at in events:
        state = evolve(state, event_type, payload, version, occurred_at)
    return state
