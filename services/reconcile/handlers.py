"""Reconcile's application layer: add each event's fact to the order's sheet, re-assess it, and
raise or resolve discrepancies; the grace-period job raises those that outlast the grace."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconcile import store
from services.reconcile.bank.openitems import OPEN_ITEM_EVENT_TYPES, OpenItemWrites, keep_open_items
from services.reconcile.domain import (
    FACT_EVENT_TYPES,
    apply_event,
    assess,
    review,
    status_since,
)
from services.reconcile.kept import KeptSheets
from services.reconcile.recorded import GRACE_PERIOD_CAUSE, RecordedRaises, kinds_of
from shared import periodic
from shared.clock import Clock, ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import DiscrepancyDetected, DiscrepancyResolved, Payload
from shared.eventstore import Meta, append
from shared.inbox import BatchStart, BatchWork, Handler, Incoming
from shared.lag import ConsumerLag
from shared.logging import get_logger
from shared.metrics import METRICS

log = get_logger(__name__)


def make_handler(clock: Clock, grace: timedelta, lag: ConsumerLag | None = None,
                 recorded: RecordedRaises | None = None) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself).
    ``lag`` (shared with the batch work and the grace-period job): how far behind reconcile's
    facts are. ``recorded`` (a replay): raise what live raised, see ``recorded.py``."""
    lag = lag if lag is not None else ConsumerLag()

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        lag.observe((incoming,))
        await keep_open_items(conn, incoming.event)  # the open items bank lines are matched to
        await handle_event(conn, incoming.event, clock, grace, _behind(lag), recorded)

    return handle


def make_batch_start(clock: Clock, grace: timedelta, lag: ConsumerLag | None = None,
                     kept: KeptSheets | None = None, recorded: RecordedRaises | None = None
                     ) -> BatchStart:
    """The same handling for a whole batch: every sheet of the batch locked and loaded in one
    statement (the facts of the sheets ``kept`` since the batch that saved them only where the
    database has a newer revision), the events folded in memory in order, the sheets written
    in one statement and kept once committed."""
    lag = lag if lag is not None else ConsumerLag()
    kept = kept if kept is not None else KeptSheets()

    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        lag.observe(messages)
        orders = sorted({m.event.order_id for m in messages
                         if m.event.event_type in FACT_EVENT_TYPES and m.event.order_id})
        rows = await store.lock_sheets(conn, orders, clock.now(), kept.revisions(orders))
        reused = sum(1 for row in rows if row.kept)
        if reused:
            METRICS.inc("oms_reconcile_sheets_kept_total", reused)
        sheets = {row.order_id: store.Sheet.from_row(row, kept.facts) for row in rows}
        return _Batch(conn, clock, grace, sheets, _behind(lag), kept, recorded)

    return start


def _behind(lag: ConsumerLag) -> timedelta:
    return timedelta(seconds=lag.behind())


class _Batch:
    def __init__(self, conn: AsyncConnection, clock: Clock, grace: timedelta,
                 sheets: dict[str, store.Sheet], behind: timedelta, kept: KeptSheets,
                 recorded: RecordedRaises | None) -> None:
        self.conn, self.clock, self.grace, self.sheets = conn, clock, grace, sheets
        self.behind, self.kept, self.recorded = behind, kept, recorded
        self.open_items = OpenItemWrites()  # written together at the end (order-free writes)

    async def handle(self, message: Incoming) -> None:
        event = message.event
        if event.event_type in OPEN_ITEM_EVENT_TYPES:
            self.open_items.collect(event)
        if event.event_type in FACT_EVENT_TYPES and event.order_id is not None:
            sheet = self.sheets[event.order_id]
            await _apply(self.conn, sheet, event, self.clock, self.grace, self.behind,
                         self.recorded)

    async def finish(self) -> None:
        await self.open_items.flush(self.conn)
        await store.save_sheets(self.conn, list(self.sheets.values()))  # the settled ones

    def committed(self) -> None:
        self.kept.keep(sheet for sheet in self.sheets.values() if sheet.changed)


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock,
                       grace: timedelta, behind: timedelta = timedelta(0),
                       recorded: RecordedRaises | None = None) -> None:
    order_id = event.order_id
    if event.event_type not in FACT_EVENT_TYPES or order_id is None:
        return
    sheet = store.Sheet.from_row(await store.lock_sheet(conn, order_id, clock.now()))
    await _apply(conn, sheet, event, clock, grace, behind, recorded)
    await store.save_sheets(conn, [sheet])


async def _apply(conn: AsyncConnection, sheet: store.Sheet, event: EventEnvelope, clock: Clock,
                 grace: timedelta, behind: timedelta, recorded: RecordedRaises | None) -> None:
    sheet.begin(clock.now())
    sheet.facts = apply_event(sheet.facts, str(event.event_id), event.event_type, event.payload,
                              event.stream_version)
    meta = Meta(correlation_id=event.correlation_id, causation_id=str(event.event_id), actor=SYSTEM)
    await settle(conn, sheet, clock, grace, meta, behind, recorded)


async def settle(conn: AsyncConnection, sheet: store.Sheet, clock: Clock, grace: timedelta,
                 meta: Meta, behind: timedelta = timedelta(0),
                 recorded: RecordedRaises | None = None, cause: str | None = None) -> int:
    """Assess the order, append discrepancy events as the review decides, update the sheet (in
    memory: the caller saves it). Returns how many discrepancies were raised or resolved.
    ``behind``: how far behind reconcile's facts are (see ``review``). ``recorded`` (a
    replay): raise what live raised for ``cause`` (default: the meta's causation id)."""
    now = clock.now()
    facts = sheet.facts
    assessment = assess(facts)
    raised = recorded.at(cause or meta.causation_id or "") if recorded is not None else None
    decided = review(facts.order_id, assessment, sheet.finding_since, sheet.open_kinds, now, grace,
                     behind, kinds_of(raised) if raised is not None else None)
    if decided.deferred:
        METRICS.inc("oms_reconcile_raises_deferred_total", decided.deferred)
    outgoing: list[Payload] = [*decided.detected, *decided.resolved]
    appended = await append(conn, facts.order_id, None, outgoing, meta=meta, clock=clock,
                            key=facts.order_id)
    reasons = {f.kind: f.reason for f in assessment.findings}
    if raised and recorded is not None:
        unfound = sorted(kind for kind in raised if kind not in reasons)
        if unfound:
            recorded.not_found(facts.order_id, unfound, cause or meta.causation_id or "", now)
        reasons = {kind: r.reason for kind, r in raised.items()} | reasons
    for payload, envelope in zip(outgoing, appended, strict=True):
        if isinstance(payload, DiscrepancyDetected):
            await store.record_detected(conn, payload, reason=reasons[payload.kind],
                                        event_id=envelope.event_id, now=now)
            sheet.open_kinds.add(payload.kind)
            # a replay raises again what live raised (and warned of) long ago: not news
            (log.debug if recorded is not None else log.warning)(
                "discrepancy detected", order_id=facts.order_id, kind=payload.kind,
                expected=payload.expected, actual=payload.actual)
        elif isinstance(payload, DiscrepancyResolved):
            await store.record_resolved(conn, payload, event_id=envelope.event_id)
            sheet.open_kinds.discard(payload.kind)
            log.info("discrepancy resolved", order_id=facts.order_id, kind=payload.kind)
    sheet.settled(assessment, decided.finding_since, decided.unraised_since,
                  status_since(sheet.status, sheet.status_since, assessment.status, now), now)
    return len(outgoing)


async def raise_overdue_discrepancies(engine: AsyncEngine, clock: Clock, grace: timedelta,
                                      lag: ConsumerLag | None = None) -> int:
    """One pass of the job: every disagreement found longer than ``grace`` ago is raised (on
    reconcile's horizon: ``grace`` plus how far behind its facts are, see ``review``).

    Facts only change when events arrive (the handler reviews then); time passing without events
    is what this pass is for. Returns how many discrepancies were raised or resolved.
    """
    behind = _behind(lag) if lag is not None else timedelta(0)
    async with engine.connect() as conn:
        due = await store.orders_due(conn, clock.now() - grace - behind)
    changed = 0
    for order_id in due:
        try:
            changed += await _settle_alone(engine, order_id, clock, grace, behind,
                                           unless_busy=True)
        except (asyncio.CancelledError, OSError):
            raise
        except Exception as error:  # one unreadable sheet must not stop the others being checked
            log.warning("discrepancy check failed for an order", order_id=order_id, error=str(error))
    return changed


async def raise_as_recorded(engine: AsyncEngine, envelope: EventEnvelope, clock: ManualClock, *,
                            grace: timedelta, recorded: RecordedRaises) -> None:
    """A replay's re-run of one raise of live's grace-period job (``recorded.JOB_RAISE``), at the
    instant live made it (the replay has set ``clock``)."""
    await _settle_alone(engine, str(envelope.payload["order_id"]), clock, grace,
                        recorded=recorded, cause=str(envelope.payload["cause"]))


async def _settle_alone(engine: AsyncEngine, order_id: str, clock: Clock, grace: timedelta,
                        behind: timedelta = timedelta(0), recorded: RecordedRaises | None = None,
                        cause: str | None = None, *, unless_busy: bool = False) -> int:
    """One look of the grace-period job at one order, in a transaction of its own (``settle``).

    ``unless_busy`` (the live job): an order whose sheet another transaction holds is left
    alone; it is a consumer's batch handling its events (which reviews it) or another
    instance's job (which settles it), and waiting for either would stall the pass; the next
    pass looks again. A replay's re-run of a recorded raise always takes its turn."""
    meta = Meta(correlation_id=order_id, actor=SYSTEM, causation_id=GRACE_PERIOD_CAUSE)
    async with engine.begin() as conn:
        if unless_busy and not await store.sheet_free(conn, order_id):
            return 0
        sheet = store.Sheet.from_row(await store.lock_sheet(conn, order_id, clock.now()))
        changed = await settle(conn, sheet, clock, grace, meta, behind, recorded, cause)
        await store.save_sheets(conn, [sheet])
    return changed


async def run_discrepancy_job(engine: AsyncEngine, clock: Clock, grace: timedelta,
                              every_seconds: float, lag: ConsumerLag | None = None) -> None:
    async def step() -> None:
        changed = await raise_overdue_discrepancies(engine, clock, grace, lag)
        if changed:
            log.info("discrepancy pass", changed=changed)

    await periodic.every(every_seconds, step, log, "discrepancy pass failed")


async def watch_silences(lag: ConsumerLag, grace: timedelta, every_seconds: float = 2.0) -> None:
    """``tell_silences`` every few seconds (the grace-period job's period may be much longer)."""
    told: set[str] = set()

    async def step() -> None:
        nonlocal told
        told = tell_silences(lag, grace, told)

    await periodic.every(every_seconds, step, log, "watching silences failed")


def tell_silences(lag: ConsumerLag, grace: timedelta, told: set[str], out: Any = log) -> set[str]:
    """Warn once when a producer has owed answers for longer than the grace without a word (the
    raises of what it owes wait for it, ``shared/silence.py``), and say when it answers again;
    returns the topics told of. ``out``: the logger (a test's stand-in)."""
    silent = {topic: seconds for topic, seconds in lag.silent().items()
              if seconds > grace.total_seconds()}
    for topic in sorted(silent.keys() - told):
        out.warning("a service owes answers and says nothing: discrepancies about it wait",
                    topic=topic, silent_seconds=round(silent[topic], 1))
    for topic in sorted(told - silent.keys()):
        out.info("a silent service answers again", topic=topic)
    return set(silent)
