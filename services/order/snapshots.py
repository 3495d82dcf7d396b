"""Order states kept between messages, so an order's log is not read and folded again each time.

An order's state is a pure function of its events up to its version, and events are never
changed, so a state folded once from the log stays true: the next load reads only the events
after its version and folds those. Of the event at the state's own version only the hash is
read, and compared with the one the state was folded up to; the hash chains every earlier event, so
an equal hash means an equal history. A state folded from events a rolled-back transaction had
written (or from another database with the same order ids, as in tests) fails that check and
is folded again from the whole stream.

What goes in: states folded from what was read, and a batch's states once its transaction
committed (never a state a transaction is about to append: it may yet roll back). Bounded: the
least recently used order leaves first. How often a kept state served is in the metrics
(``oms_order_states_kept_total`` / ``_folded_total``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.domain.state import OrderState, evolve, fold
from shared import eventstore
from shared.metrics import METRICS
from shared.pipeline import Query, run

# About 10,000 orders in flight at once; a state costs a few kB (its placed payload mostly).
DEFAULT_SIZE = 10_000


class StateCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._states: OrderedDict[str, OrderState] = OrderedDict()

    def get(self, order_id: str) -> OrderState | None:
        state = self._states.get(order_id)
        if state is not None:
            self._states.move_to_end(order_id)
        return state

    def put(self, state: OrderState) -> None:
        if not state.exists or state.head is None or state.head[0] != state.version:
            return
        self._states[state.order_id] = state
        self._states.move_to_end(state.order_id)
        while len(self._states) > self.size:
            self._states.popitem(last=False)

    def drop(self, order_id: str) -> None:
        self._states.pop(order_id, None)

    def clear(self) -> None:
        self._states.clear()


STATES = StateCache()


def folded(order_id: str, stored: list[eventstore.StoredEvent]) -> OrderState:
    state = fold(order_id, [(e.envelope.event_type, e.envelope.payload, e.envelope.stream_version,
                             e.envelope.occurred_at) for e in stored])
    if stored:  # the next append needs not read the head again
        state = replace(state, head=(stored[-1].envelope.stream_version, stored[-1].hash))
    return state


def advanced(state: OrderState, head: str | None, after: list[eventstore.StoredEvent]
             ) -> OrderState | None:
    """``state`` moved on by the events after its own version; None when the log's event at that
    version (its hash: ``head``) is not the one the state was folded up to."""
    assert state.head is not None
    if head is None or head != state.head[1]:
        return None
    if not after:
        return state
    for e in after:
        env = e.envelope
        state = evolve(state, env.event_type, env.payload, env.stream_version, env.occurred_at)
    last = after[-1]
    return replace(state, head=(last.envelope.stream_version, last.hash))


async def load(conn: AsyncConnection, order_ids: Sequence[str],
               cache: StateCache = STATES) -> dict[str, OrderState]:
    """The orders' current states in one query (two when a kept state proved stale); an order
    without events is a fresh, not existing, state."""
    return await loaded(conn, await run(conn, load_query(order_ids, cache)), cache)


@dataclass(frozen=True)
class Read:
    """What ``load_query`` read: the states kept for the orders and their logs from there."""

    order_ids: Sequence[str]
    kept: dict[str, OrderState]
    streams: eventstore.Streams


def load_query(order_ids: Sequence[str], cache: StateCache = STATES) -> Query[Read]:
    """``load``'s query, to send with others (``shared.pipeline``); then ``loaded``."""
    kept = {o: s for o in order_ids if (s := cache.get(o)) is not None}
    query = eventstore.read_streams_query(order_ids, {o: s.version for o, s in kept.items()})
    return Query(query.statement, query.params,
                 lambda rows: Read(order_ids, kept, query.parse(rows)))


async def loaded(conn: AsyncConnection, read: Read, cache: StateCache = STATES
                 ) -> dict[str, OrderState]:
    """The states from what ``load_query`` read (a kept state that proved stale read again)."""
    order_ids, kept = read.order_ids, read.kept
    heads, found = read.streams
    states: dict[str, OrderState] = {}
    stale: list[str] = []
    for order_id in order_ids:
        stored = found.get(order_id, [])
        known = kept.get(order_id)
        state = (advanced(known, heads.get(order_id), stored) if known is not None
                 else folded(order_id, stored))
        if state is None:
            stale.append(order_id)
            cache.drop(order_id)
            continue
        states[order_id] = state
        cache.put(state)
    hits = len(kept) - len(stale)
    METRICS.inc("oms_order_states_kept_total", hits)
    METRICS.inc("oms_order_states_folded_total", len(order_ids) - hits)
    if stale:
        _, again = await eventstore.read_streams(conn, stale)
        for order_id in stale:
            states[order_id] = state = folded(order_id, again.get(order_id, []))
            cache.put(state)
    return states
