"""Time travel: an order's timeline and status as they stood at an instant, from its event log alone.

The status is derived by a small table of status-bearing event types (below), not by importing the
order service's fold: shared code never imports services. It follows the order service's
``status()`` for the common path; the event list is the authoritative record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contract.order_events import OrderAmended
from shared.eventstore import read_stream
from shared.upcasting import upcast

# event type -> the status the order has after it (None: the event does not move the status).
STATUS_AFTER: dict[str, str] = {
    "order.placed": "placed",
    "order.backordered": "backordered",
    "order.approval_requested": "pending_approval",
    "order.approved": "approved",
    "order.approval_rejected": "approval_rejected",
    "order.confirmed": "confirmed",
    "order.deposit_paid": "deposit_paid",
    "order.paid": "paid",
    "order.shipped": "shipped",
    "order.delivered": "delivered",
    "order.completed": "completed",
    "order.cancelled": "cancelled",
    "order.return_requested": "return_requested",
    "order.returned": "returned",
}
# Approvals of an amendment leave the order's own status where it was.
_AMENDMENT_APPROVALS = {"order.approval_requested", "order.approved", "order.approval_rejected"}
# Once these hold, later facts (a late payment, a return of a cancelled order) do not undo them.
_FINAL = {"cancelled"}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    stream_version: int
    occurred_at: datetime
    event_type: str
    actor: str
    summary: str
    status: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderHistory:
    order_id: str
    as_of: datetime | None
    status: str
    version: int
    facts: dict[str, Any] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "status": self.status, "version": self.version, "facts": self.facts,
            "timeline": [
                {"stream_version": e.stream_version, "occurred_at": e.occurred_at.isoformat(),
                 "event_type": e.event_type, "actor": e.actor, "status": e.status,
                 "summary": e.summary, "payload": e.payload}
                for e in self.timeline
            ],
        }


def next_status(current: str, event_type: str, payload: dict[str, Any]) -> str:
    """The status after one event (the table above, with the amendment and final-state rules)."""
    if current in _FINAL:
        return current
    if event_type in _AMENDMENT_APPROVALS and payload.get("kind", "order") != "order":
        return current
    if event_type == "order.shipped" and payload.get("complete") is False:
        return "partially_shipped"
    return STATUS_AFTER.get(event_type, current)


def _raises_total(payload: dict[str, Any]) -> bool:
    return OrderAmended.model_validate(payload).raises_total


def summarise(event_type: str, payload: dict[str, Any]) -> str:
    """A one-line, human summary of the facts an auditor looks for first."""
    parts: list[str] = []
    for key in ("total", "paid_amount", "amount", "reason", "request_id", "voucher_number",
                "approved_by", "role", "level"):
        if key in payload and payload[key] not in (None, "", []):
            parts.append(f"{key}={payload[key]}")
    if event_type == "order.placed":
        parts.insert(0, f"{payload.get('channel')}:{payload.get('channel_order_id')} "
                        f"{len(payload.get('lines') or [])} line(s)")
    if "currency" in payload and any(p.startswith(("total", "paid", "amount")) for p in parts):
        parts.append(str(payload["currency"]))
    return " ".join(parts)


def fold_history(order_id: str, events: list[tuple[int, datetime, str, int, str, dict[str, Any]]],
                 as_of: datetime | None) -> OrderHistory:
    """Pure: (version, occurred_at, type, schema_version, actor, payload) rows -> the history."""
    status = "unknown"
    version = 0
    facts: dict[str, Any] = {}
    timeline: list[TimelineEntry] = []
    for stream_version, occurred_at, event_type, schema_version, actor, raw in events:
        if as_of is not None and occurred_at > as_of:
            break
        _, payload = upcast(event_type, schema_version, raw)
        status = next_status(status, event_type, payload)
        if status == "paid" and event_type == "order.amended" and _raises_total(payload):
            # as the order service folds it: the raised total is owed until paid again
            status = "deposit_paid" if any(e.event_type == "order.deposit_paid"
                                           for e in timeline) else "confirmed"
        version = stream_version
        if event_type == "order.placed":
            facts.update({k: payload.get(k) for k in
                          ("channel", "channel_order_id", "order_type", "total", "currency")})
            facts["customer"] = (payload.get("customer") or {}).get("id")
            facts["placed_at"] = occurred_at.isoformat()
        if event_type == "order.paid":
            facts["paid_amount"] = payload.get("paid_amount")
        facts["last_event_at"] = occurred_at.isoformat()
        timeline.append(TimelineEntry(stream_version, occurred_at, event_type, actor,
                                      summarise(event_type, payload), status, payload))
    if not timeline:
        status = "not placed yet" if events else "unknown"
    return OrderHistory(order_id, as_of, status, version, facts, timeline)


async def order_history(conn: AsyncConnection, order_id: str, as_of: datetime | None
                        ) -> tuple[OrderHistory, bool]:
    """The order's history as of ``as_of`` (occurred_at, the business time); and whether the
    order has any event at all."""
    stored = await read_stream(conn, order_id)
    rows = [(e.envelope.stream_version, e.envelope.occurred_at, e.envelope.event_type,
             e.envelope.schema_version,
             f"{e.envelope.actor.kind}:{e.envelope.actor.id}"
             + (f" ({e.envelope.actor.role})" if e.envelope.actor.role else ""),
             e.envelope.payload) for e in stored]
    return fold_history(order_id, rows, as_of), bool(stored)
