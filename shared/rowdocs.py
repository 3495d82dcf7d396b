"""Many rows in one statement with one parameter: the rows travel as one JSON document (orjson:
C-speed encoding) and PostgreSQL unpacks them with ``jsonb_to_recordset``, typed by the table's
own columns. An executemany of the same INSERT or UPDATE sends every row through psycopg's
per-row machinery and PostgreSQL's per-statement work (under bench 3, 10-20 % of a service's CPU
went there); here a batch of rows is one round trip and one statement whatever its size.

What a column holds is what an executemany through SQLAlchemy would have written: Decimals
travel as their strings (numeric keeps the scale: ``0.00`` stays ``0.00``), aware datetimes,
dates and UUIDs in ISO 8601, and ``None`` in a JSON(B) column is JSON ``null`` (SQLAlchemy's
default), not SQL NULL. Inserted rows go in in the order given (serial ids follow it).
``execute_together`` sends several such writes (a batch's events and rows) as one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import JSON

from shared.db import json_document

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def _quote(name: str) -> str:
    return str(_DIALECT.identifier_preparer.quote(name))


@dataclass(frozen=True, slots=True)
class RowsStatement:
    """An INSERT or UPDATE of many rows given as dicts with exactly ``columns`` as keys."""

    statement: TextClause
    columns: tuple[str, ...]
    key: tuple[str, ...] = ()  # an UPDATE's or upsert's key: each row must name a different row

    async def execute(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        write = self.write(rows)
        if write is not None:
            await conn.execute(self.statement, {"rows": write.rows})

    def write(self, rows: Sequence[Mapping[str, Any]]) -> Write | None:
        """The statement with these rows, to run with others (``execute_together``); None
        when there are none."""
        if not rows:
            return None
        wanted = set(self.columns)
        for row in rows:
            if row.keys() != wanted:
                raise ValueError(f"a row of {sorted(row)} for columns {sorted(wanted)}")
        if self.key and len({tuple(row[k] for k in self.key) for row in rows}) != len(rows):
            raise ValueError(f"two rows for the same {', '.join(self.key)}: one statement "
                             "changes a row once")
        return Write(self.statement.text, json_document(list(rows)))


@dataclass(frozen=True, slots=True)
class Write:
    """One statement whose only parameter is ``CAST(:rows AS jsonb)``, and that document."""

    sql: str
    rows: str


_ROWS = "CAST(:rows AS jsonb)"


async def execute_together(conn: AsyncConnection, given: Sequence[Write | None]
                           ) -> Sequence[Any]:
    """Several writes in one statement, one round trip (each a data-modifying WITH query; a
    None, ``write`` without rows, is left out); returns what the first one's RETURNING gives
    (nothing without one). They run on one snapshot, none seeing another's rows: only writes
    independent of each other go together."""
    writes = [write for write in given if write is not None]
    if not writes:
        return []
    for write in writes:
        if write.sql.count(_ROWS) != 1:
            raise ValueError(f"not a one-document statement: {write.sql[:80]}")
    if len(writes) == 1:
        result = await conn.execute(text(writes[0].sql), {"rows": writes[0].rows})
        return result.all() if result.returns_rows else []
    parts = ", ".join(f"w{n} AS ({w.sql.replace(_ROWS, f'CAST(:rows_{n} AS jsonb)')})"
                      for n, w in enumerate(writes))
    returning = " RETURNING " in writes[0].sql.upper()
    sql = f"WITH {parts} " + ("SELECT * FROM w0" if returning else "SELECT 1 WHERE false")
    return (await conn.execute(text(sql), {f"rows_{n}": w.rows for n, w in enumerate(writes)})
            ).all()


def _record(table: Table, columns: Sequence[str]) -> str:
    return ", ".join(f"{_quote(name)} {table.c[name].type.compile(dialect=_DIALECT)}"
                     for name in columns)


def _value(table: Table, name: str) -> str:
    kind = table.c[name].type
    if isinstance(kind, JSON) and not kind.none_as_null:
        return f"COALESCE(r.{_quote(name)}, 'null'::{kind.compile(dialect=_DIALECT)})"
    return f"r.{_quote(name)}"


def _rows_from(table: Table, columns: Sequence[str]) -> str:
    return (f"ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS ({_record(table, columns)}))"
            " WITH ORDINALITY AS r")


def insert_rows(table: Table, columns: Sequence[str],
                *, skip_conflicts: bool | Sequence[str] = False) -> RowsStatement:
    """``INSERT INTO table (columns)`` for every row, in order; ``skip_conflicts``: ON CONFLICT
    DO NOTHING (a row whose key exists is left as it is), on any unique key (True) or on the
    unique index of the columns named."""
    names = ", ".join(_quote(name) for name in columns)
    values = ", ".join(_value(table, name) for name in columns)
    sql = (f"INSERT INTO {_quote(table.name)} ({names}) SELECT {values} "
           f"FROM {_rows_from(table, columns)} ORDER BY r.ordinality")
    if skip_conflicts is True:
        sql += " ON CONFLICT DO NOTHING"
    elif skip_conflicts:
        sql += f" ON CONFLICT ({', '.join(map(_quote, skip_conflicts))}) DO NOTHING"
    return RowsStatement(text(sql), tuple(columns))


def update_rows(table: Table, key: str, columns: Sequence[str]) -> RowsStatement:
    """``UPDATE table SET columns`` of the row whose ``key`` column equals each row's ``key``."""
    sets = ", ".join(f"{_quote(name)} = {_value(table, name)}" for name in columns)
    sql = (f"UPDATE {_quote(table.name)} AS t SET {sets} FROM {_rows_from(table, [key, *columns])}"
           f" WHERE t.{_quote(key)} = r.{_quote(key)}")
    return RowsStatement(text(sql), (key, *columns), (key,))


def upsert_rows(table: Table, columns: Sequence[str], key: Sequence[str],
                sets: Mapping[str, str]) -> RowsStatement:
    """``insert_rows`` where a row whose ``key`` exists is updated instead: ``sets`` maps each
    column to change to its SQL (over ``EXCLUDED``, the row offered, and ``t``, the row there),
    as ``ON CONFLICT (key) DO UPDATE`` spells it."""
    names = ", ".join(_quote(name) for name in columns)
    values = ", ".join(_value(table, name) for name in columns)
    changes = ", ".join(f"{_quote(name)} = {expression}" for name, expression in sets.items())
    sql = (f"INSERT INTO {_quote(table.name)} AS t ({names}) SELECT {values} "
           f"FROM {_rows_from(table, columns)} ORDER BY r.ordinality "
           f"ON CONFLICT ({', '.join(map(_quote, key))}) DO UPDATE SET {changes}")
    return RowsStatement(text(sql), tuple(columns), tuple(key))


def excluded(*columns: str) -> dict[str, str]:
    """``sets`` for an upsert that takes these columns from the row offered."""
    return {name: f"EXCLUDED.{_quote(name)}" for name in columns}
