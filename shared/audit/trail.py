"""An order's trail through every service's log: what each service recorded about it, in order.

``oms audit history`` folds the order service's own stream. An auditor following an order asks
more: was the stock reserved, by which event; which invoice, which payment, and who matched the
bank transfer, with what note; was the customer told; did reconcile find the services agreeing.
Each service keeps its own log, so the trail reads, in each one:
- the order's own stream (inventory's reservations, billing's account, reconcile's discrepancies
  use the order id as their stream);
- the events keyed by the order on streams of their own: notify's ``notification.*`` (a stream per
  notification) and reconcile's ``bank_line.matched`` (a stream per bank line), and of each such
  bank line the events keyed by the line itself (``bank_line.unmatched``: imported without a
  match, a match undone), so a line matched by hand shows what came before.
Every stream the trail draws on is read whole and its hash chain recomputed, so the trail says
whether what it shows is what was appended. Time travel (``as_of``) keeps the events that
occurred by then, as ``oms audit history`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.audit.history import summarise
from shared.chainverify import read_verified
from shared.eventstore import StoredEvent

# Events about an order kept on streams of their own, found by their key (the order id).
KEYED_ELSEWHERE = ("notification.sent", "notification.failed", "bank_line.matched")
BANK_LINE = "bank-line:"
_DETAILS = ("transaction_id", "applied", "rule", "flagged", "channel", "recipient", "kind",
            "expected", "actual", "warehouse", "lines")


@dataclass(frozen=True, slots=True)
class TrailEntry:
    service: str
    event: StoredEvent
    caused_by: str  # the causing event as "service event_type" when in the trail, else its id

    @property
    def occurred_at(self) -> datetime:
        return self.event.envelope.occurred_at

    def actor(self) -> str:
        actor = self.event.envelope.actor
        return f"{actor.kind}:{actor.id}" + (f" ({actor.role})" if actor.role else "")

    def details(self) -> str:
        env = self.event.envelope
        payload = env.payload
        extra = [f"{key}={_short(payload[key])}" for key in _DETAILS
                 if key in payload and payload[key] not in (None, "", [])]
        return " ".join(part for part in (summarise(env.event_type, payload), *extra) if part)

    def as_dict(self) -> dict[str, Any]:
        env = self.event.envelope
        return {"service": self.service, "occurred_at": env.occurred_at.isoformat(),
                "event_type": env.event_type, "event_id": str(env.event_id),
                "stream_id": env.stream_id, "stream_version": env.stream_version,
                "actor": self.actor(), "causation_id": env.causation_id,
                "caused_by": self.caused_by, "correlation_id": env.correlation_id,
                "payload": env.payload, "prev_hash": self.event.prev_hash,
                "hash": self.event.hash}


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"[{len(value)}]"
    return str(value)


@dataclass(frozen=True, slots=True)
class StreamBreak:
    service: str
    stream_id: str
    stream_version: int
    reason: str

    def describe(self) -> str:
        return f"{self.service} {self.stream_id} v{self.stream_version}: {self.reason}"


@dataclass(frozen=True, slots=True)
class OrderTrail:
    order_id: str
    as_of: datetime | None
    entries: list[TrailEntry] = field(default_factory=list)
    streams: int = 0  # streams read whole and checked
    breaks: list[StreamBreak] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id,
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "streams_checked": self.streams, "intact": not self.breaks,
                "breaks": [b.describe() for b in self.breaks],
                "events": [e.as_dict() for e in self.entries]}


_KEYED = text("SELECT DISTINCT stream_id FROM events WHERE event_type = ANY(CAST(:types AS text[]))"
              " AND message_key = :key AND stream_id <> :key ORDER BY stream_id")


async def _streams(conn: AsyncConnection, order_id: str) -> list[str]:
    """The streams of this service's log that hold events about the order."""
    return [order_id, *(await conn.execute(
        _KEYED, {"types": list(KEYED_ELSEWHERE), "key": order_id})).scalars()]


def _about(event: StoredEvent, order_id: str) -> bool:
    """Of a bank line's stream, the events of this order and the line's own (key: the line)."""
    env = event.envelope
    if not env.stream_id.startswith(BANK_LINE):
        return True
    return event.key == order_id or event.key == env.stream_id.removeprefix(BANK_LINE)


async def service_trail(conn: AsyncConnection, service: str, order_id: str
                        ) -> tuple[list[StoredEvent], int, list[StreamBreak]]:
    """One service's events about the order (every one, time travel is applied on the merge),
    how many streams were checked, and the breaks found in them."""
    events: list[StoredEvent] = []
    breaks: list[StreamBreak] = []
    streams = await _streams(conn, order_id)
    checked = 0
    for stream_id in streams:
        stored, broken = await read_verified(conn, stream_id)
        if broken is not None:
            breaks.append(StreamBreak(service, stream_id, broken.event.envelope.stream_version,
                                      broken.reason))
        elif not stored:
            continue
        checked += 1
        events += [event for event in stored if _about(event, order_id)]
    return events, checked, breaks


def merge(order_id: str, found: Mapping[str, Iterable[StoredEvent]], as_of: datetime | None,
          streams: int = 0, breaks: Iterable[StreamBreak] = (),
          causes: Mapping[str, str] | None = None) -> OrderTrail:
    """Pure: every service's events about the order in the order they occurred (ties: the
    services' order, then the log's), each naming its cause: an event of the trail, else one of
    ``causes`` (event id -> "service event_type": events about something else, a receipt), else
    the causation id as recorded (a storefront message's id, a command's name)."""
    order = {name: n for n, name in enumerate(found)}
    every = [(service, event) for service, events in found.items() for event in events]
    names = {**(causes or {}),
             **{str(e.envelope.event_id): f"{s} {e.envelope.event_type}" for s, e in every}}
    every.sort(key=lambda se: (se[1].envelope.occurred_at, order[se[0]], se[1].position))
    entries = [TrailEntry(service, event, names.get(event.envelope.causation_id or "",
                                                    event.envelope.causation_id or ""))
               for service, event in every
               if as_of is None or event.envelope.occurred_at <= as_of]
    return OrderTrail(order_id, as_of, entries, streams, list(breaks))


async def order_trail(connections: Mapping[str, AsyncConnection], order_id: str,
                      as_of: datetime | None) -> OrderTrail:
    """The order's trail through the services' logs (service -> an open connection)."""
    found: dict[str, list[StoredEvent]] = {}
    streams = 0
    breaks: list[StreamBreak] = []
    for service, conn in connections.items():
        events, checked, broken = await service_trail(conn, service, order_id)
        found[service] = events
        streams += checked
        breaks += broken
    shown = {e.envelope.event_id for events in found.values() for e in events}
    wanted = {cause for events in found.values() for e in events
              if (cause := _event_id(e.envelope.causation_id)) is not None and cause not in shown}
    causes: dict[str, str] = {}
    for service, conn in connections.items():
        if wanted:
            rows = await conn.execute(_TYPES, {"ids": sorted(wanted)})
            causes.update({str(r.event_id): f"{service} {r.event_type}" for r in rows})
    return merge(order_id, found, as_of, streams, breaks, causes)


_TYPES = text("SELECT event_id, event_type FROM events WHERE event_id = ANY(CAST(:ids AS uuid[]))")


def _event_id(causation_id: str | None) -> uuid.UUID | None:
    """The causation id as an event id, when it is one (not a command's name)."""
    try:
        return uuid.UUID(causation_id) if causation_id else None
    except ValueError:
        return None
