"""Billing's application layer: lock an order's account, decide, save it with its events at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing import account_store, domain, queries, store
from services.billing.account_writes import Booking, Change, account_writes, save_accounts
from shared.auth import Principal
from shared.clock import Clock
from shared.contract.bank_events import BankLineMatched, bank_payment_id, bank_received_at
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.order_events import OrderAmended, OrderReturned, OrderShipped
from shared.contract.payloads import OrderPaymentCaptured, OrderPlaced, Payload, parse_payload
from shared.eventbatch import PendingEvents, stream_heads
from shared.eventstore import Head, Meta, append
from shared.inbox import BatchStart, BatchWork, Incoming


class CountingVouchers:
    """Stands in for the counters on a first, dry run: counts the numbers a decision needs."""

    def __init__(self) -> None:
        self.needs: dict[str, int] = {}

    def next(self, series: str) -> str:
        self.needs[series] = self.needs.get(series, 0) + 1
        return f"{series}-0000-{self.needs[series]:06d}"


class SuppliedVouchers:
    def __init__(self, numbers: dict[str, list[str]]) -> None:
        self.numbers = numbers

    def next(self, series: str) -> str:
        return self.numbers[series].pop(0)


Decide = Callable[[domain.Vouchers], domain.Decision]
# A replay (``oms replay billing``) sets, around an event the live service answered, the first
# number it drew per (series, year): the replay gives the event those numbers (not the counter's).
LIVE_NUMBERS: ContextVar[Mapping[tuple[str, int], int] | None] = ContextVar(
    "billing_live_numbers", default=None)


async def decide_with_vouchers(conn: AsyncConnection, decide: Decide, year: int,
                               draws: store.BatchDraws | None = None) -> domain.Decision:
    """Run a decision; when it needs voucher numbers, draw exactly those and run it again.

    Decisions are pure, so the second run decides the same. A decision refused on the first run
    draws no number; numbers are drawn series by series in one order (CN before INV) and, being
    inside the caller's transaction, go back with it if it rolls back.
    """
    counting = CountingVouchers()
    decision = decide(counting)
    if not counting.needs:
        return decision
    numbers: dict[str, list[str]] = {}
    live = LIVE_NUMBERS.get()
    for series in sorted(counting.needs):
        count = counting.needs[series]
        first = None if live is None else live.get((series, year))
        if first is not None:
            drawn = list(range(first, first + count))
        elif draws is not None:
            drawn = await draws.draw(conn, series, year, count)
        else:
            drawn = await store.next_voucher_numbers(conn, series, year, count)
        numbers[series] = [domain.voucher_number(year, number, series) for number in drawn]
    supplied = SuppliedVouchers(numbers)
    decision = decide(supplied)
    assert not any(supplied.numbers.values()), "a decision drew fewer numbers the second time"
    return decision


@dataclass
class Deferred:
    """A batch's events, written at its end in one statement, after heads read at its start
    (an order locked later in the batch appends at once, as alone)."""

    heads: dict[str, Head]
    events: PendingEvents = field(default_factory=PendingEvents)


async def _append(conn: AsyncConnection, account: domain.Account, streamed: bool,
                  decision: domain.Decision, meta: Meta, booking: Booking, clock: Clock,
                  deferred: Deferred | None = None) -> Change | None:
    """Append the decision's events; the change to save, or None when nothing changed.
    ``streamed``: billing has appended to the order's stream before (else its head is not read)."""
    if decision.account == account:
        return None
    order_id = account.order_id
    head = deferred.heads.get(order_id) if deferred is not None else None
    if decision.events and deferred is not None and head is not None:
        appended = deferred.events.add(order_id, list(decision.events), meta=meta, key=order_id,
                                       now=clock.now(), head=head)
        deferred.heads[order_id] = appended.head or head
    elif decision.events:
        await append(conn, order_id, None if streamed else 0, list(decision.events),
                     meta=meta, clock=clock, key=order_id)
    return Change(account, decision.account, booking, appended=bool(decision.events))


async def _commit(conn: AsyncConnection, stored: account_store.Stored,
                  decision: domain.Decision, meta: Meta, booking: Booking, clock: Clock) -> None:
    change = await _append(conn, stored.account, stored.streamed, decision, meta, booking, clock)
    if change is not None:
        await save_accounts(conn, {stored.account.order_id: stored}, [change])


def _captured(payment: OrderPaymentCaptured) -> domain.Payment:
    return domain.Payment(payment.payment_id, payment.method, payment.kind, payment.amount,
                          payment.currency, payment.captured_at, "storefront")


def _banked(matched: BankLineMatched) -> domain.Payment:
    """A bank line reconcile matched to an invoice: the part applied to it, received on the
    statement's booking date (00:00 UTC)."""
    return domain.Payment(bank_payment_id(matched.transaction_id, matched.voucher_number),
                          "bank_transfer", "transfer", matched.applied,
                          matched.currency, bank_received_at(matched.booked_on), "bank")


def _decision_for(event_type: str, payload: Payload, account: domain.Account,
                  cause: domain.Cause) -> Decide | None:
    """How an order event is decided on, or None for the event types billing does not book."""
    if isinstance(payload, OrderPlaced):
        return lambda v: domain.keep_order(account, payload, cause, v)
    if event_type == "order.confirmed":
        return lambda v: domain.confirm(account, cause, v)
    if isinstance(payload, OrderAmended):
        return lambda v: domain.amend(account, payload, cause, v)
    if isinstance(payload, OrderPaymentCaptured):
        return lambda v: domain.record_payment(account, _captured(payload), cause)
    if isinstance(payload, OrderShipped):
        return lambda v: domain.recognize_shipment(account, payload, cause)
    if event_type == "order.cancelled":
        return lambda v: domain.cancel(account, cause, v)
    if isinstance(payload, OrderReturned):
        return lambda v: domain.take_return(account, payload, cause, v)
    if isinstance(payload, BankLineMatched):  # a flagged match waits for finance to confirm it
        return (lambda v: domain.Decision(account)) if payload.flagged else (
            lambda v: domain.record_payment(account, _banked(payload), cause))
    return None


BOOKED = frozenset({"order.placed", "order.confirmed", "order.amended", "order.payment_captured",
                    "order.shipped", "order.cancelled", "order.returned", "bank_line.matched"})


def _order_of(event: EventEnvelope) -> str:
    if event.order_id is None:
        raise domain.BillingRefusal(f"{event.event_type} {event.event_id} names no order")
    return event.order_id


async def _book(conn: AsyncConnection, account: domain.Account, streamed: bool,
                event: EventEnvelope, payload: Payload, clock: Clock,
                deferred: Deferred | None = None, draws: store.BatchDraws | None = None
                ) -> Change | None:
    """Decide on a booked event and append what billing says; the change to save, if any."""
    cause = domain.Cause(str(event.event_id), clock.now())
    decide = _decision_for(event.event_type, payload, account, cause)
    assert decide is not None
    decision = await decide_with_vouchers(conn, decide, cause.at.year, draws)
    booking = Booking(event.event_id, cause.at,
                      placed_event_id=event.event_id if isinstance(payload, OrderPlaced) else None)
    return await _append(conn, account, streamed, decision, _meta(event), booking, clock,
                         deferred)


def _payment_id(payload: Payload) -> str | None:
    if isinstance(payload, OrderPaymentCaptured):
        return payload.payment_id
    if isinstance(payload, BankLineMatched):
        return bank_payment_id(payload.transaction_id, payload.voucher_number)
    return None


async def handle_order_event(conn: AsyncConnection, message: Incoming, *, clock: Clock) -> None:
    """Consumer entry point for ``oms.order.events.v1`` and reconcile's ``bank_line.matched``
    (inside the inbox's transaction)."""
    event = message.event
    if event.event_type not in BOOKED:
        return
    payload = parse_payload(event.event_type, event.payload)
    order_id = _order_of(event)
    # Payment ids are global: one seen on any order has no second effect (nor a row locked).
    stored = await account_store.lock_account(conn, order_id, unless_paid=_payment_id(payload))
    if stored is None:
        return
    change = await _book(conn, stored.account, stored.streamed, event, payload, clock)
    if change is not None:
        await save_accounts(conn, {order_id: stored}, [change])


def make_batch_start(clock: Clock) -> BatchStart:
    """``handle_order_event`` for a whole batch: the batch's accounts locked and loaded with one
    statement per table, decided on in memory event by event (vouchers and events are drawn and
    appended as each event is handled), saved at the end with one statement per table."""

    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        booked = [(m.event, parse_payload(m.event.event_type, m.event.payload))
                  for m in messages if m.event.event_type in BOOKED]
        paid = await store.recorded_payments(
            conn, [p for _, payload in booked if (p := _payment_id(payload)) is not None])
        # The orders handle_order_event would lock: a payment id recorded before (in the
        # database or earlier in the batch) locks nothing.
        seen, orders = set(paid), set()
        for event, payload in booked:
            payment_id = _payment_id(payload)
            if event.order_id is None or payment_id in seen:
                continue
            if payment_id is not None:
                seen.add(payment_id)
            orders.add(event.order_id)
        stored = await account_store.lock_accounts(conn, sorted(orders))
        heads = await stream_heads(conn, sorted(o for o, s in stored.items() if s.streamed))
        deferred = Deferred({**dict.fromkeys(stored, (0, None)), **heads})
        return _Batch(conn, clock, stored, paid,
                      {event.event_id: payload for event, payload in booked}, deferred)

    return start


class _Batch:
    """A batch's accounts as its events change them, saved by ``finish``."""

    def __init__(self, conn: AsyncConnection, clock: Clock,
                 stored: dict[str, account_store.Stored], paid: set[str],
                 payloads: dict[uuid.UUID, Payload], deferred: Deferred) -> None:
        self.conn, self.clock, self.stored, self.paid = conn, clock, stored, paid
        self.deferred = deferred
        self.payloads = payloads
        self.accounts = {order_id: s.account for order_id, s in stored.items()}
        self.streamed = {order_id for order_id, s in stored.items() if s.streamed}
        self.changes: list[Change] = []
        self.draws = store.BatchDraws()

    async def handle(self, message: Incoming) -> None:
        event = message.event
        if event.event_type not in BOOKED:
            return
        payload = self.payloads[event.event_id]
        order_id = _order_of(event)
        if _payment_id(payload) in self.paid:
            return
        if order_id not in self.accounts:  # not foreseen by start: locked as alone
            stored = await account_store.lock_account(self.conn, order_id)
            assert stored is not None
            self.stored[order_id], self.accounts[order_id] = stored, stored.account
            if stored.streamed:
                self.streamed.add(order_id)
        change = await _book(self.conn, self.accounts[order_id], order_id in self.streamed,
                             event, payload, self.clock, self.deferred, self.draws)
        if change is None:
            return
        self.changes.append(change)
        self.accounts[order_id] = change.new
        self.paid.update(p.payment_id for p in change.new.payments)
        if change.appended:
            self.streamed.add(order_id)

    async def finish(self) -> None:
        await self.draws.finish(self.conn)
        # the events and the accounts' rows in one statement (one round trip)
        await self.deferred.events.flush(self.conn, *account_writes(self.stored, self.changes))


def _meta(cause: EventEnvelope) -> Meta:
    return Meta(correlation_id=cause.correlation_id, causation_id=str(cause.event_id),
                actor=SYSTEM)


# ---- payments entered by finance over HTTP ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    """A payment finance saw arrive (a bank transfer, usually) and enters by hand."""

    order_id: str
    payment_id: str
    method: str
    amount: Decimal
    currency: str
    received_at: datetime | None = None


class UnknownOrder(LookupError):
    pass


class PaymentConflict(Exception):
    """The payment id is taken by a payment with other content."""


def _differences(row: Any, transfer: Transfer) -> list[str]:
    wanted = {"order_id": transfer.order_id, "method": transfer.method,
              "amount": transfer.amount, "currency": transfer.currency}
    if transfer.received_at is not None:
        wanted["received_at"] = transfer.received_at
    return [f"{name}: {getattr(row, name)} recorded, {value} sent"
            for name, value in wanted.items() if getattr(row, name) != value]


async def _known_payment(conn: AsyncConnection, transfer: Transfer) -> dict[str, Any] | None:
    row = await store.payment_row(conn, transfer.payment_id)
    if row is None:
        return None
    differences = _differences(row, transfer)
    if differences:
        raise PaymentConflict(f"payment {transfer.payment_id} is already recorded with other "
                              f"content: {'; '.join(differences)}")
    return queries.payment_view(row)


async def record_transfer(engine: AsyncEngine, transfer: Transfer, who: Principal, clock: Clock
                          ) -> tuple[bool, dict[str, Any]]:
    """Book a payment entered over HTTP once per payment id: (newly recorded?, the payment).

    The same payment id with the same content answers with the payment as first recorded;
    with other content it is a PaymentConflict. An order billing has not seen placed is an
    UnknownOrder; a payment billing cannot book (currency, amount) a BillingRefusal.
    """
    try:
        async with engine.begin() as conn:
            known = await _known_payment(conn, transfer)
            if known is not None:
                return False, known
            stored = await account_store.lock_existing(conn, transfer.order_id)
            if stored is None or stored.account.order is None:
                raise UnknownOrder(f"billing knows no placed order {transfer.order_id!r}")
            known = await _known_payment(conn, transfer)  # a twin request may have won the lock
            if known is not None:
                return False, known
            at = clock.now()
            cause = domain.Cause(f"payment:{transfer.payment_id}", at)
            payment = domain.Payment(transfer.payment_id, transfer.method, "transfer",
                                     transfer.amount, transfer.currency,
                                     transfer.received_at or at, "finance")
            decision = domain.record_payment(stored.account, payment, cause)
            meta = Meta(correlation_id=str(uuid.uuid4()), causation_id=None,
                        actor=who.actor())
            await _commit(conn, stored, decision, meta, Booking(None, at, recorded_by=who.user),
                          clock)
            row = await store.payment_row(conn, transfer.payment_id)
            return True, queries.payment_view(row)
    except exc.IntegrityError as error:  # the same id recorded on another order meanwhile
        raise PaymentConflict(f"payment {transfer.payment_id} was recorded concurrently") from error
