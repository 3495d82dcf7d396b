"""Grace periods on the injected clock: when a finding becomes a discrepancy and when it is over."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reconcile.domain.rules import Assessment, Finding
from shared.contract.payloads import DiscrepancyDetected, DiscrepancyResolved


@dataclass(frozen=True, slots=True)
class Review:
    """What one look at an order decides.

    ``finding_since``: since when each current kind has been found (kept while it stays).
    ``detected`` / ``resolved``: the events to append. ``unraised_since``: the earliest start of
    a disagreement not raised yet, so a periodic job knows when to look again (None: nothing).
    ``deferred``: disagreements past the grace left unraised because reconcile is behind.
    """

    finding_since: dict[str, datetime]
    detected: tuple[DiscrepancyDetected, ...]
    resolved: tuple[DiscrepancyResolved, ...]
    unraised_since: datetime | None
    deferred: int = 0


def track_since(assessment: Assessment, previous: Mapping[str, datetime], now: datetime
                ) -> dict[str, datetime]:
    """Since when each kind has been found: a kind that stays keeps its start; a new one starts now."""
    return {kind: previous.get(kind, now) for kind in assessment.kinds}


def review(order_id: str, assessment: Assessment, previous_since: Mapping[str, datetime],
           open_kinds: Set[str], now: datetime, grace: timedelta,
           behind: timedelta = timedelta(0),
           recorded: Mapping[str, DiscrepancyDetected] | None = None) -> Review:
    """Raise every disagreement found for longer than ``grace`` and not raised yet (once per
    order and kind while it lasts); resolve every raised kind that is no longer found.

    ``behind``: how far behind the facts reconcile has are (its consumer's lag plus how late
    the services' recent answers came, ``shared.lag``). They are that much older than ``now``,
    so a disagreement is raised only once it has lasted ``grace`` on reconcile's own horizon
    (now - behind): a backlog must not turn facts still in flight into discrepancies (they were,
    by the thousand, when reconcile fell minutes behind).

    ``recorded`` (a replay): what the live service raised at this look, by kind. Whether a
    disagreement had lasted long enough depended on how far behind live was then, which the
    history does not hold: so exactly those kinds are raised (as found now, else as recorded)
    and no other; one raised as recorded but not found now is resolved at once."""
    if recorded is not None:
        return _as_recorded(order_id, assessment, previous_since, open_kinds, now, recorded)
    since = track_since(assessment, previous_since, now)
    detected: list[DiscrepancyDetected] = []
    waiting: list[datetime] = []
    deferred = 0
    for finding in assessment.discrepancies:
        if finding.kind in open_kinds:
            continue
        started = since[finding.kind]
        if now - behind - started >= grace:
            detected.append(detection(order_id, finding, started))
        else:
            waiting.append(started)
            deferred += now - started >= grace
    found = set(assessment.kinds)
    resolved = tuple(DiscrepancyResolved(order_id=order_id, kind=kind, resolved_at=now)
                     for kind in sorted(open_kinds - found))
    return Review(since, tuple(detected), resolved, min(waiting) if waiting else None, deferred)


def _as_recorded(order_id: str, assessment: Assessment, previous_since: Mapping[str, datetime],
                 open_kinds: Set[str], now: datetime,
                 recorded: Mapping[str, DiscrepancyDetected]) -> Review:
    since = track_since(assessment, previous_since, now)
    found = {finding.kind: finding for finding in assessment.discrepancies}
    detected = tuple(detection(order_id, found[kind], since[kind]) if kind in found
                     else recorded[kind] for kind in sorted(recorded) if kind not in open_kinds)
    waiting = [since[kind] for kind in found if kind not in open_kinds and kind not in recorded]
    raised = {d.kind for d in detected}
    resolved = tuple(DiscrepancyResolved(order_id=order_id, kind=kind, resolved_at=now)
                     for kind in sorted((set(open_kinds) | raised) - set(assessment.kinds)))
    return Review(since, detected, resolved, min(waiting) if waiting else None)


def detection(order_id: str, finding: Finding, since: datetime) -> DiscrepancyDetected:
    return DiscrepancyDetected(order_id=order_id, kind=finding.kind, expected=finding.expected,
                               actual=finding.actual, since=since)


def status_since(previous_status: str | None, previous_since: datetime | None, status: str,
                 now: datetime) -> datetime:
    """When the order entered its current status (kept while it stays)."""
    if previous_status == status and previous_since is not None:
        return previous_since
    return now
