"""The instances of a consumer tell each other how far behind they are (``shared/lag.py``).

Each instance of a service (one consumer group, ``oms run --scale``) handles its own partitions
and knows only its own lag, while what it decides may wait for facts on partitions another
instance has: reconcile's grace counts from how far behind the facts are. So every instance
writes its ``ConsumerLag.local()`` into ``consumer_horizons`` (the service's database, which its
instances share) every ``every`` seconds, and reads the largest figure the others wrote within
``fresh_for`` seconds (the database's clock: one clock for all): an instance that crashed or
was stopped soon stops counting. Rows of instances not heard from for an hour are removed.
A platform table: ``oms replay`` neither rebuilds nor compares it.
"""

from __future__ import annotations

import asyncio
import os
import socket

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.lag import ConsumerLag
from shared.logging import get_logger

log = get_logger(__name__)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS consumer_horizons (
    consumer        text             NOT NULL,
    instance        text             NOT NULL,
    behind_seconds  double precision NOT NULL,
    reported_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, instance)
)
"""

_REPORT = text("""
WITH mine AS (
    INSERT INTO consumer_horizons (consumer, instance, behind_seconds, reported_at)
    VALUES (:consumer, :instance, :behind, now())
    ON CONFLICT (consumer, instance)
    DO UPDATE SET behind_seconds = EXCLUDED.behind_seconds, reported_at = EXCLUDED.reported_at
), gone AS (
    DELETE FROM consumer_horizons WHERE reported_at < now() - interval '1 hour'
)
SELECT coalesce(max(behind_seconds), 0) FROM consumer_horizons
WHERE consumer = :consumer AND instance <> :instance
  AND reported_at > now() - make_interval(secs => :fresh_for)
""")


async def ensure_schema(conn: AsyncConnection) -> None:
    await conn.execute(text(SCHEMA_SQL))


def instance_id(configured: str | None) -> str:
    """``OMS_INSTANCE`` (``oms run`` sets it), else this host and process: unique either way."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


async def share_once(engine: AsyncEngine, lag: ConsumerLag, consumer: str, instance: str,
                     fresh_for: float = 10.0) -> float:
    """Report this instance's figure, hear the others' (also returned)."""
    async with engine.begin() as conn:
        others = (await conn.execute(_REPORT, {
            "consumer": consumer, "instance": instance, "behind": lag.local(),
            "fresh_for": fresh_for})).scalar_one()
    lag.hear_elsewhere(float(others))
    return float(others)


async def share_forever(engine: AsyncEngine, lag: ConsumerLag, consumer: str, instance: str,
                        every: float = 2.0, fresh_for: float = 10.0) -> None:
    while True:
        try:
            await share_once(engine, lag, consumer, instance, fresh_for)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database away: the others' last report ages out
            log.warning("could not share the consumer's horizon", error=str(error))
        await asyncio.sleep(every)
