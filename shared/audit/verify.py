"""Tamper check of one service's event store: every stream's hash chain and the global order."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.chainverify import verify_chain
from shared.db import create_engine


@dataclass(frozen=True, slots=True)
class Finding:
    """The first event that does not hold, named so an auditor can find the row."""

    stream_id: str
    stream_version: int
    event_id: uuid.UUID | None
    reason: str

    def describe(self) -> str:
        return (f"stream {self.stream_id!r} version {self.stream_version} "
                f"(event {self.event_id}): {self.reason}")

    def as_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "stream_version": self.stream_version,
                "event_id": str(self.event_id) if self.event_id else None, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Verdict:
    events: int
    streams: int
    finding: Finding | None

    @property
    def intact(self) -> bool:
        return self.finding is None


_ORDER_CHECK = text(
    """
    WITH ordered AS (
        SELECT stream_id, stream_version, event_id, position,
               lag(stream_version) OVER w AS prev_version,
               lag(position) OVER w AS prev_position,
               count(*) OVER (PARTITION BY position) AS same_position
        FROM events
        WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)
    )
    SELECT stream_id, stream_version, event_id, prev_version, same_position,
           (prev_position IS NOT NULL AND position <= prev_position) AS backwards
    FROM ordered
    WHERE same_position > 1
       OR (prev_version IS NULL AND stream_version <> 1)
       OR (prev_version IS NOT NULL AND stream_version <> prev_version + 1)
       OR (prev_position IS NOT NULL AND position <= prev_position)
    ORDER BY position
    LIMIT 1
    """
)


async def check_global_order(conn: AsyncConnection) -> Finding | None:
    """Within each stream, versions run 1, 2, 3... and positions rise with them (appends to one
    stream are serialised, so a later version always draws a later position); a position shared
    by two events, a gap or a reordering is a finding.

    Transaction ids are not required to rise with versions: a transaction may get its id (at its
    first write) before an earlier version of the stream commits, so that would be a false alarm.
    """
    row = (await conn.execute(_ORDER_CHECK)).first()
    if row is None:
        return None
    if row.same_position > 1:
        reason = "its position is shared with another event (positions were rewritten)"
    elif row.backwards:
        reason = "global order goes backwards: its position is not after the previous version's"
    elif row.prev_version is None:
        reason = f"the stream starts at version {row.stream_version}: earlier events are missing"
    else:
        reason = (f"version {row.stream_version} follows version {row.prev_version}: "
                  "an event is missing")
    return Finding(row.stream_id, int(row.stream_version), row.event_id, reason)


async def verify_store(conn: AsyncConnection) -> Verdict:
    """Recompute every hash chain, then check the global order; the first finding, or none."""
    counts = (await conn.execute(
        text("SELECT count(*), count(DISTINCT stream_id) FROM events"))).one()
    broken = await verify_chain(conn)
    finding: Finding | None = None
    if broken is not None:
        env = broken.event.envelope
        finding = Finding(env.stream_id, env.stream_version, env.event_id, broken.reason)
    else:
        finding = await check_global_order(conn)
    return Verdict(events=int(counts[0]), streams=int(counts[1]), finding=finding)


async def verify_stores(urls: Mapping[str, str]) -> dict[str, Verdict | str]:
    """``verify_store`` of each service's database (``oms audit verify``, a swap's check); a
    store that cannot be read gives why, as text."""
    results: dict[str, Verdict | str] = {}
    for service, url in urls.items():
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                results[service] = await verify_store(conn)
        except DBAPIError as error:
            results[service] = f"cannot read the event store: {str(error.orig).strip()}"
        finally:
            await engine.dispose()
    return results
