"""The baseline: the ``eventsourcing`` library (9.5.6) with its PostgreSQL recorder."""

from __future__ import annotations

import threading
import time
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy.engine import make_url


class BenchOrder(Aggregate):
    """An order aggregate whose creation is one event (``Confirmed``), like one OMS command."""

    @event("Confirmed")
    def __init__(self, order_id: str, total: str, currency: str) -> None:
        self.order_id, self.total, self.currency = order_id, total, currency

    @event("Noted")
    def note(self, total: str) -> None:
        self.total = total


class BenchOrders(Application):  # type: ignore[type-arg]
    """The library's application service; ``save`` is one transaction."""


def eventsourcing_env(url: str) -> dict[str, str]:
    """The ``eventsourcing.postgres`` settings for the database at ``url`` (socket or TCP)."""
    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host", "")) or "localhost"
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parsed.database), "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parsed.port or 5432), "POSTGRES_USER": parsed.username or "postgres",
        "POSTGRES_PASSWORD": parsed.password or "", "POSTGRES_POOL_SIZE": "16",
    }


def eventsourcing_rate(url: str, writers: int, commands: int, batch: int) -> float:
    """Events/s: each command creates an aggregate (one event, or ``batch`` events) and saves
    it, from ``writers`` threads sharing one Application."""
    app = BenchOrders(env=eventsourcing_env(url))
    per_writer = max(1, commands // writers)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(per_writer):
                order = BenchOrder(f"ORD-{w}-{i}", "199.00", "CNY")
                for _ in range(batch - 1):
                    order.note("199.00")
                app.save(order)
        except BaseException as error:  # surfaced after join
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    app.close()
    if errors:
        raise errors[0]
    return per_writer * writers * batch / seconds


def stored_events(url: str) -> Any:
    """How many events the library stored (a sanity check that saves really happened)."""
    import psycopg

    from shared.db import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM stored_events").fetchone()
    return row[0] if row else 0
