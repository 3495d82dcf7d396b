"""Finance's own decisions on bank lines: match a line by hand, confirm a flagged match, undo one.

The matching rules leave some lines to a person: two invoices could be the one paid (the line
stays unmatched with its candidates), a memo names no invoice, a partial payment beyond the
tolerance, a match within the tolerance (flagged: billing does not book it). Each decision here is
recorded on the line and announced as the import's are (``bank_line.matched`` per invoice, or
``bank_line.unmatched``), with the person as the event's actor and their note in the reason, so:
- billing books a match made or confirmed here as it books an automatic one (payment id
  ``bank:<transaction id>:<voucher number>``, once) and the order service marks the order paid;
- reconcile's open items lose the line and the money the invoice owed;
- the audit trail says who decided what, when and why.

Only a flagged match can be undone: billing never books one by itself, so nothing was booked
(one entered by hand under the line's payment id is refused here, then it must be credited in
billing first). An unflagged match is booked by billing as soon as it reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconcile.bank import store
from services.reconcile.bank.handlers import announce
from services.reconcile.bank.matching import MANUAL, Allocation, Decision
from services.reconcile.bank.statement import BankLine
from services.reconcile.bank.store import bank_allocations, bank_invoices, bank_lines
from shared.clock import Clock
from shared.contract.bank_events import bank_payment_id
from shared.contract.envelope import Actor
from shared.eventstore import Meta
from shared.money import MINOR_UNITS

ZERO = Decimal("0.00")
NOTE_MAX = 500


class LineNotFound(LookupError):
    """No bank line with that transaction id was imported."""


class DecisionRefused(Exception):
    """The line's state does not allow the decision (already matched, not flagged, booked)."""


class BadChoice(ValueError):
    """An invoice or amount that cannot be taken: ``where`` names the field (HTTP 422)."""

    def __init__(self, where: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True, slots=True)
class Wanted:
    """An invoice a line is to pay, and how much of the line (None: what it owes, at most what is
    left of the line)."""

    voucher_number: str
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Owed:
    voucher_number: str
    order_id: str
    currency: str
    outstanding: Decimal
    voided: bool


async def _line(conn: AsyncConnection, transaction_id: str) -> Any:
    """The line, locked until the transaction ends (with every import and rematch: they decide
    on the same open invoices)."""
    await store.lock_bank_lines(conn)
    row = (await conn.execute(select(bank_lines).where(
        bank_lines.c.transaction_id == transaction_id).with_for_update())).first()
    if row is None:
        raise LineNotFound(f"no bank line {transaction_id!r} was imported")
    return row


async def _owed(conn: AsyncConnection, vouchers: Sequence[str]) -> dict[str, _Owed]:
    rows = await conn.execute(text(
        f"SELECT voucher_number, order_id, currency, {store.OUTSTANDING} AS outstanding, voided"
        " FROM bank_invoices WHERE voucher_number = ANY(CAST(:v AS text[]))"
        " ORDER BY voucher_number FOR UPDATE"), {"v": list(vouchers)})
    return {r.voucher_number: _Owed(r.voucher_number, r.order_id, r.currency,
                                    Decimal(r.outstanding), r.voided) for r in rows}


def _who(actor: Actor, note: str) -> str:
    return f"{actor.id}" + (f": {note}" if note else "")


def allocate(line: BankLine, wanted: Sequence[Wanted], owed: dict[str, _Owed]
             ) -> tuple[Allocation, ...]:
    """What a line pays of each invoice wanted, in the order given; refuses what cannot be
    taken with the field and what is accepted."""
    if not wanted:
        raise BadChoice(("body", "invoices"), "name at least one invoice (voucher number)")
    places = MINOR_UNITS.get(line.currency, 2)
    left = line.amount
    allocations: list[Allocation] = []
    seen: set[str] = set()
    for n, want in enumerate(wanted):
        where: tuple[str | int, ...] = ("body", "invoices", n)
        invoice = owed.get(want.voucher_number)
        if want.voucher_number in seen:
            raise BadChoice((*where, "voucher_number"), f"{want.voucher_number!r} named twice")
        seen.add(want.voucher_number)
        if invoice is None:
            raise BadChoice((*where, "voucher_number"),
                            f"no invoice {want.voucher_number!r} is known to reconcile")
        if invoice.voided:
            raise BadChoice((*where, "voucher_number"), f"invoice {want.voucher_number} is voided")
        if invoice.currency != line.currency:
            raise BadChoice((*where, "voucher_number"),
                            f"invoice {want.voucher_number} is in {invoice.currency}, the line "
                            f"in {line.currency}")
        if invoice.outstanding <= 0:
            raise BadChoice((*where, "voucher_number"),
                            f"invoice {want.voucher_number} owes nothing")
        if want.amount is None:
            applied = min(left, invoice.outstanding)
        else:
            applied = want.amount
            if applied <= 0 or applied != round(applied, places):
                raise BadChoice((*where, "amount"), f"must be above 0 with at most {places} "
                                f"decimals in {line.currency}, not {applied}")
            if applied > invoice.outstanding:
                raise BadChoice((*where, "amount"), f"{applied} is more than invoice "
                                f"{want.voucher_number} owes ({invoice.outstanding})")
        if applied <= 0 or applied > left:
            raise BadChoice((*where, "amount"), f"the line has {left} {line.currency} left to "
                            f"apply, not {applied if applied > 0 else 'any'}")
        allocations.append(Allocation(invoice.voucher_number, invoice.order_id, applied))
        left -= applied
    return tuple(allocations)


async def _announce(conn: AsyncConnection, line: BankLine, decision: Decision, clock: Clock,
                    actor: Actor, what: str) -> None:
    """As an import announces its decisions, with the person as actor and ``bank:<what>``."""
    meta = Meta(correlation_id=f"bank-{what}-{uuid.uuid4()}", actor=actor,
                causation_id=f"bank:{what}")
    await announce(conn, line, decision, clock, meta)


async def match_by_hand(engine: AsyncEngine, clock: Clock, transaction_id: str,
                        wanted: Sequence[Wanted], note: str, actor: Actor) -> dict[str, Any]:
    """An unmatched money-in line paid to the invoices finance names (rule ``manual``, not
    flagged: billing books each part)."""
    async with engine.begin() as conn:
        row = await _line(conn, transaction_id)
        if row.status != "unmatched":
            raise DecisionRefused(
                f"bank line {transaction_id} is already matched ({row.rule}): "
                + (f"undo the flagged match first (oms bank unmatch {transaction_id} --note WHY)"
                   if row.flagged else "billing books it; a wrong one is credited in billing"))
        line = store.line_from_row(row)
        if line.amount <= 0:
            raise DecisionRefused(f"bank line {transaction_id} is money out ({line.amount}): "
                                  "only money in pays invoices")
        owed = await _owed(conn, [w.voucher_number for w in wanted])
        allocations = allocate(line, wanted, owed)
        left = line.amount - sum((a.applied for a in allocations), ZERO)
        reason = f"matched by hand by {_who(actor, note)}" + (
            f"; {left} {line.currency} of the line not applied" if left else "")
        decision = Decision(transaction_id, True, MANUAL, Decimal("1.00"), Decimal(row.tolerance),
                            row.window_days, reason, allocations, left, False,
                            tuple(a.voucher_number for a in allocations))
        await store.record_decision(conn, line, decision)
        await _announce(conn, line, decision, clock, actor, "match")
    return _answer(line, decision)


async def _allocations(conn: AsyncConnection, transaction_id: str) -> list[Allocation]:
    rows = await conn.execute(select(bank_allocations).where(
        bank_allocations.c.transaction_id == transaction_id).order_by(bank_allocations.c.id))
    return [Allocation(r.voucher_number, r.order_id, Decimal(r.applied)) for r in rows]


def _flagged_match(row: Any, what: str) -> None:
    if row.status != "matched":
        raise DecisionRefused(f"bank line {row.transaction_id} is not matched: nothing to {what} "
                              "(match it by hand: oms bank match)")
    if not row.flagged:
        raise DecisionRefused(
            f"bank line {row.transaction_id}'s match ({row.rule}) is not flagged: billing books "
            "it by itself, " + ("there is nothing to confirm" if what == "confirm" else
                                "so it cannot be undone here (credit it in billing)"))


async def confirm(engine: AsyncEngine, clock: Clock, transaction_id: str, note: str,
                  actor: Actor) -> dict[str, Any]:
    """A flagged match checked and found right: announced again, not flagged, so billing books
    it as it books any other."""
    async with engine.begin() as conn:
        row = await _line(conn, transaction_id)
        _flagged_match(row, "confirm")
        line = store.line_from_row(row)
        reason = f"{row.reason}; confirmed by {_who(actor, note)}"
        decision = Decision(transaction_id, True, row.rule, Decimal(row.score),
                            Decimal(row.tolerance), row.window_days, reason,
                            tuple(await _allocations(conn, transaction_id)),
                            Decimal(row.difference), False, tuple(row.candidates))
        await conn.execute(bank_lines.update().where(bank_lines.c.transaction_id == transaction_id)
                           .values(flagged=False, reason=reason))
        await _announce(conn, line, decision, clock, actor, "confirm")
    return _answer(line, decision)


async def unmatch(engine: AsyncEngine, clock: Clock, transaction_id: str, note: str,
                  actor: Actor) -> dict[str, Any]:
    """A flagged match found wrong: its money is taken off the invoices and the line is
    unmatched again, to be matched by hand (a rematch leaves it alone: rule ``manual``)."""
    if not note.strip():
        raise BadChoice(("body", "note"), "say why the match is wrong (the audit trail keeps it)")
    async with engine.begin() as conn:
        row = await _line(conn, transaction_id)
        _flagged_match(row, "undo")
        line = store.line_from_row(row)
        allocations = await _allocations(conn, transaction_id)
        booked = await _booked(conn, transaction_id, allocations)
        if booked:
            raise DecisionRefused(f"billing booked {', '.join(booked)}: credit it in billing "
                                  "before the match can be undone")
        for a in allocations:
            await conn.execute(bank_invoices.update()
                               .where(bank_invoices.c.voucher_number == a.voucher_number)
                               .values(matched=bank_invoices.c.matched - a.applied))
        await conn.execute(delete(bank_allocations)
                           .where(bank_allocations.c.transaction_id == transaction_id))
        was = ", ".join(a.voucher_number for a in allocations)
        reason = f"unmatched by {_who(actor, note)} (was {row.rule}: {was})"
        # rule manual: a rematch leaves the line alone (the rules would find the same invoice)
        decision = Decision(transaction_id, False, MANUAL, ZERO, Decimal(row.tolerance),
                            row.window_days, reason, (), ZERO, False,
                            tuple(a.voucher_number for a in allocations))
        await store.record_decision(conn, line, decision)
        await _announce(conn, line, decision, clock, actor, "unmatch")
    return _answer(line, decision)


async def _booked(conn: AsyncConnection, transaction_id: str,
                  allocations: Sequence[Allocation]) -> list[str]:
    """The line's payment ids billing has booked (entered by hand under the line's id)."""
    ids = {bank_payment_id(transaction_id, a.voucher_number): a.voucher_number
           for a in allocations}
    rows = await conn.execute(select(bank_invoices.c.voucher_number, bank_invoices.c.booked).where(
        bank_invoices.c.voucher_number.in_(list(ids.values()))))
    return sorted(pid for r in rows for pid in r.booked if pid in ids)


def _answer(line: BankLine, decision: Decision) -> dict[str, Any]:
    return {"transaction_id": line.transaction_id, "amount": str(line.amount),
            "currency": line.currency, "status": "matched" if decision.matched else "unmatched",
            "rule": decision.rule, "flagged": decision.flagged, "reason": decision.reason,
            "difference": str(decision.difference),
            "allocations": [{"voucher_number": a.voucher_number, "order_id": a.order_id,
                             "applied": str(a.applied),
                             "payment_id": bank_payment_id(line.transaction_id, a.voucher_number)}
                            for a in decision.allocations],
            "billing_books": decision.matched and not decision.flagged}
