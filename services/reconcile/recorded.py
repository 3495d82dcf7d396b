"""What live reconcile raised, for ``oms replay reconcile`` to raise the same.

Live raises a disagreement once it has lasted the grace on reconcile's horizon: the grace plus
how far behind its facts were at that moment (``shared.lag``: its consumer's lag, how late the
services' answers came). The history does not hold that moment's lag, so a replay cannot decide
again when (or whether) each disagreement was raised; it takes live's decisions from live's own
log instead, as an event-sourced system replays decisions rather than re-making them:

- a raise caused by a fact (``causation_id`` = the fact's event id) is made when the replay
  handles that fact, and only then;
- a raise of the grace-period job (time passing, no event) is re-run at the instant live made it
  (a ``Record``: the replay feeds it among the facts, in time order).

Each is raised as the replayed facts find it (its expected / actual then checked by the
comparison with live); one the replayed facts do not show at that point is raised as recorded,
resolved at once, and named in the replay's report (``unfounded``). What to resolve is never
taken from the record: resolving follows the facts and never waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.audit.sources import Record
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import DiscrepancyDetected

GRACE_PERIOD_CAUSE = "reconcile:grace-period"  # the job's causation id
JOB_RAISE = "reconcile.grace-period-raise"  # names the replay command re-running a job's raise
SHOWN = 20  # raises not found again, named one by one in the report (then counted)

_RAISED = text(
    "SELECT e.event_id, e.causation_id, e.occurred_at, e.tx_id::text AS tx, e.stream_id,"
    " e.stream_version, e.correlation_id, e.payload, d.reason"
    " FROM events e LEFT JOIN discrepancies d ON d.detected_event_id = e.event_id"
    " WHERE e.event_type = 'discrepancy.detected' ORDER BY e.tx_id, e.position")


@dataclass(frozen=True, slots=True)
class Raised:
    """One discrepancy live raised: its event's payload and the reason it gave."""

    detected: DiscrepancyDetected
    reason: str


@dataclass
class RecordedRaises:
    """Live's raises by cause (a fact's event id, or a job pass's own event id)."""

    by_cause: dict[str, dict[str, Raised]] = field(default_factory=dict)
    job: list[Record] = field(default_factory=list)
    # raised as recorded, not found again: by (order, cause), so a batch re-run alone (after a
    # failure undid it) names each once
    unfounded: dict[tuple[str, str], str] = field(default_factory=dict)

    def at(self, cause: str) -> dict[str, Raised]:
        return self.by_cause.get(cause, {})

    def add(self, cause: str, raised: Raised) -> None:
        self.by_cause.setdefault(cause, {})[raised.detected.kind] = raised

    def not_found(self, order_id: str, kinds: list[str], cause: str, at: datetime) -> None:
        self.unfounded[(order_id, cause)] = (
            f"{order_id}: {', '.join(kinds)} raised live ({_cause(cause)}, {at.isoformat()}) but "
            "not found by the replayed history there: raised as recorded and resolved at once")

    def report(self) -> list[str]:
        raised = sum(len(kinds) for kinds in self.by_cause.values())
        one = raised == 1
        lines = [f"{raised} discrepanc{'y' if one else 'ies'} raised when live raised "
                 f"{'it' if one else 'them'} ({len(self.job)} by the grace-period job), as "
                 "live's log says: whether one had lasted the grace depended on how far behind "
                 "live was"] if raised else []
        shown = list(self.unfounded.values())[:SHOWN]
        more = len(self.unfounded) - len(shown)
        return lines + shown + ([f"... and {more} more raised as recorded"] if more else [])


def _cause(cause: str) -> str:
    return "by the grace-period job" if cause.startswith("job:") else f"at event {cause}"


def _raised(row: Any) -> Raised:
    detected = DiscrepancyDetected.model_validate(row.payload)
    return Raised(detected, row.reason if row.reason is not None else detected.kind)


async def read_raises(conn: AsyncConnection) -> RecordedRaises:
    """Every discrepancy.detected in live's log: by the fact that caused it, the job's as
    records to re-run (``JOB_RAISE``, keyed ``job:<event id>``)."""
    recorded = RecordedRaises()
    for row in await conn.execute(_RAISED):
        raised = _raised(row)
        if row.causation_id != GRACE_PERIOD_CAUSE:
            recorded.add(str(row.causation_id), raised)
            continue
        cause = f"job:{row.event_id}"
        recorded.add(cause, raised)
        envelope = EventEnvelope(
            event_id=row.event_id, event_type=JOB_RAISE, schema_version=1,
            stream_id=row.stream_id, stream_version=row.stream_version,
            occurred_at=row.occurred_at, correlation_id=row.correlation_id, actor=SYSTEM,
            payload={"cause": cause, "order_id": raised.detected.order_id})
        recorded.job.append(Record(row.occurred_at, int(row.tx), envelope))
    return recorded


def kinds_of(raised: Mapping[str, Raised]) -> dict[str, DiscrepancyDetected]:
    return {kind: r.detected for kind, r in raised.items()}
