"""Histories of orders as notify consumes them, and a count of the statements handling costs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contract.envelope import EventEnvelope
from tests.unit.reconcile.samples import (
    envelope,
    invoice_issued,
    order_confirmed,
    order_paid,
    order_placed,
    payment_recorded,
    stock_reserved,
    stock_shortage,
)


def order_events(order_id: str, *, short: bool = False) -> list[EventEnvelope]:
    """What notify consumes of one paid order: placed, reserved (or short), confirmed, invoiced,
    paid (confirmed and paid tell the customer; a shortage tells the warehouse)."""
    stock = stock_shortage(order_id) if short else stock_reserved(order_id)
    return [envelope(order_placed(order_id), version=1), envelope(stock),
            envelope(order_confirmed(order_id), version=2), envelope(invoice_issued(order_id)),
            envelope(payment_recorded(order_id)), envelope(order_paid(order_id), version=3)]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent to PostgreSQL while inside (an executemany counts once)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split())[:100])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
