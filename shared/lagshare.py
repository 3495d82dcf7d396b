"""The instances of a consumer tell each other how far behind they are (``shared/lag.py``).

Each instance of a service (one consumer group, ``oms run --scale``) handles its own partitions
and knows only its own lag, while what it decides may wait for facts on partitions another
instance has: reconcile's grace counts from how far behind the facts are. So every instance
writes its ``ConsumerLag.local()`` into ``consumer_horizons`` (the service's database, which its
instances share) every ``every`` seconds, and reads the largest figure the others wrote within
``fresh_for`` seconds (the database's clock: one clock for all): an instance that crashed or
was stopped soon stops counting. Rows of instances not heard from for an hour are removed.
With ``silences``, what each instance learned of who answers what goes into
``consumer_answers`` the same way, and each instance learns what is there (the others' and
earlier runs'). Platform tables: ``oms replay`` neither rebuilds nor compares them.
"""

from __future__ import annotations

import os
import socket
from functools import partial

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import periodic
from shared.lag import ConsumerLag
from shared.logging import get_logger
from shared.silence import Silences

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

# Who answers what (``shared/silence.py``), learned by any instance: kept for all and for the
# next start. A handful of rows, written only when something new is learned.
ANSWERS_SQL = """
CREATE TABLE IF NOT EXISTS consumer_answers (
    consumer     text NOT NULL,
    answerer     text NOT NULL,
    cause_topic  text NOT NULL,
    cause_type   text NOT NULL,
    learned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, answerer, cause_topic, cause_type)
)
"""
_TELL = text("""
INSERT INTO consumer_answers (consumer, answerer, cause_topic, cause_type)
SELECT :consumer, * FROM unnest(CAST(:answerers AS text[]), CAST(:topics AS text[]),
                                CAST(:types AS text[]))
ON CONFLICT DO NOTHING
""")
_HEAR = text("SELECT answerer, cause_topic, cause_type FROM consumer_answers "
             "WHERE consumer = :consumer")

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
    await conn.execute(text(ANSWERS_SQL))


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
        if lag.silences is not None:
            await share_answers(conn, lag.silences, consumer)
    lag.hear_elsewhere(float(others))
    return float(others)


async def share_answers(conn: AsyncConnection, silences: Silences, consumer: str) -> None:
    """Write who answers what as learned here since last time, learn what the others (and
    earlier runs) wrote."""
    untold = sorted(silences.untold())
    if untold:
        answerers, topics, types = (list(column) for column in zip(*untold, strict=True))
        await conn.execute(_TELL, {"consumer": consumer, "answerers": answerers,
                                   "topics": topics, "types": types})
    rows = await conn.execute(_HEAR, {"consumer": consumer})
    silences.teach((row.answerer, row.cause_topic, row.cause_type) for row in rows)


async def share_forever(engine: AsyncEngine, lag: ConsumerLag, consumer: str, instance: str,
                        every: float = 2.0, fresh_for: float = 10.0) -> None:
    # the database away: the others' last report ages out
    await periodic.every(every, partial(share_once, engine, lag, consumer, instance, fresh_for),
                         log, "could not share the consumer's horizon")
