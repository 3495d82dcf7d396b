"""Several statements in one round trip to PostgreSQL (psycopg's pipeline mode).

On a busy machine every round trip costs a few milliseconds of wall time, however small the
statement (two processes must each wait for a core): a consumer batch that locks its streams and
then reads three things made four of them before it could decide anything. A ``Query`` is a
statement with its parameters and what to make of its rows; ``pipelined`` sends several in one
round trip and gives each one's result. They still run one after another, each with its own
snapshot (READ COMMITTED), so a read sent after a lock sees what was committed before the lock
was granted, exactly as when they are sent one by one. ``run`` sends one query the usual way.

A failing statement fails the call (the ones after it are not run) with the error SQLAlchemy
raises for a statement sent alone (``DBAPIError``'s subclasses: a lost connection is an
``OperationalError``, so a consumer retries the batch); the caller's transaction is then aborted,
as after any failed statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import exc
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ClauseElement, Executable

T = TypeVar("T")


def _nothing(_: Sequence[Any]) -> None:
    return None


@dataclass(frozen=True)
class Query(Generic[T]):
    """A statement, its parameters and what its rows mean (rows read by column name)."""

    statement: Executable
    params: Mapping[str, Any] = field(default_factory=dict)
    parse: Callable[[Sequence[Any]], T] = _nothing  # type: ignore[assignment]


async def run(conn: AsyncConnection, query: Query[T]) -> T:
    """One query, sent as any other statement."""
    result = await conn.execute(query.statement, dict(query.params))
    return query.parse(list(result) if result.returns_rows else [])


async def pipelined(conn: AsyncConnection, queries: Sequence[Query[Any]]) -> list[Any]:
    """Each query's result, in order, the statements sent together in one round trip."""
    if len(queries) < 2:
        return [await run(conn, query) for query in queries]
    dialect = conn.dialect
    compiled = [_compiled(cast(ClauseElement, query.statement), dialect) for query in queries]
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    sent = [(str(statement), statement.construct_params(dict(query.params)))
            for query, statement in zip(queries, compiled, strict=True)]
    # Seen as one statement by SQLAlchemy's listeners (the statement counter of /metrics, the
    # tests' round-trip budgets): one round trip.
    sync = conn.sync_connection
    if sync is not None and sync.dispatch.before_cursor_execute:
        sync.dispatch.before_cursor_execute(sync, None, "; ".join(sql for sql, _ in sent),
                                            [params for _, params in sent], None, False)
    cursors = []
    try:
        async with driver.pipeline():
            for sql, params in sent:
                cursor = driver.cursor(row_factory=namedtuple_row)
                await cursor.execute(sql, params)
                cursors.append(cursor)
        rows = [await cursor.fetchall() if cursor.description is not None else []
                for cursor in cursors]
    except psycopg.Error as error:  # as SQLAlchemy raises it for a statement sent alone
        raise exc.DBAPIError.instance(
            "; ".join(sql for sql, _ in sent), [params for _, params in sent], error,
            psycopg.Error, connection_invalidated=dialect.is_disconnect(cast(Any, error), None, None),
            dialect=dialect) from error
    return [query.parse(found) for query, found in zip(queries, rows, strict=True)]


# Compiled once per statement (20-100 µs each, per batch otherwise), as SQLAlchemy's own cache
# does for what it executes; the statements are the modules' constants (bounded all the same).
_COMPILED: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}
_COMPILED_MAX = 256


def _compiled(statement: ClauseElement, dialect: Dialect) -> Compiled:
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    compiled = statement.compile(dialect=dialect)
    _COMPILED[key] = (statement, compiled)  # the statement kept: its id is not reused meanwhile
    return compiled
