"""Rows written as one JSON document (``shared.rowdocs``) are exactly what an executemany of the
same INSERT or UPDATE through SQLAlchemy writes: every column type the services use, numeric
scales, instants to the microsecond, JSON null apart from SQL NULL, the order of serial ids."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.metrics import METRICS
from shared.rowdocs import (
    Write,
    excluded,
    execute_together,
    insert_rows,
    update_rows,
    upsert_rows,
)

metadata = MetaData()


def _table(name: str) -> Table:
    return Table(
        name, metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("code", Text, nullable=False, unique=True),
        Column("n", Integer), Column("amount", Numeric(asdecimal=True)),
        Column("at", DateTime(timezone=True)), Column("day", Date), Column("ref", Uuid),
        Column("flag", Boolean), Column("doc", JSONB), Column("loose", JSONB(none_as_null=True)),
        Column("order", Text))  # a reserved word as a column name


THEIRS, OURS = _table("rows_executemany"), _table("rows_document")
COLUMNS = [c.name for c in OURS.c if c.name != "id"]
AT = datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=UTC)


def rows() -> list[dict[str, Any]]:
    return [
        {"code": "a", "n": 1, "amount": Decimal("0.00"), "at": AT, "day": date(2026, 12, 5),
         "ref": uuid.UUID(int=7), "flag": True, "doc": {"k": [1, "二", None], "x": {"y": True}},
         "loose": None, "order": "first"},
        {"code": "b", "n": None, "amount": Decimal("1234.50"), "at": None, "day": None,
         "ref": None, "flag": False, "doc": None, "loose": {"z": 1}, "order": None},
        {"code": "c", "n": -2, "amount": Decimal("-0.001"), "at": AT.replace(microsecond=0),
         "day": date(1999, 1, 31), "ref": uuid.UUID(int=2**100), "flag": None, "doc": [],
         "loose": None, "order": "it's \"quoted\"\n"},
        {"code": "d", "n": 2**31 - 1, "amount": Decimal("1E+2"), "at": AT, "day": None,
         "ref": None, "flag": True, "doc": "text", "loose": [], "order": "🙂"},
    ]


async def read(conn: AsyncConnection, table: Table) -> list[tuple[Any, ...]]:
    result = await conn.execute(text(
        f'SELECT id - min(id) OVER () AS id, code, n, amount::text, "at", day, ref, flag, doc, '
        f'doc IS NULL AS doc_sql_null, loose, loose IS NULL AS loose_sql_null, "order" '
        f"FROM {table.name} ORDER BY id"))
    return [tuple(row) for row in result]


@pytest.fixture
async def tables(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


async def test_inserted_rows_are_what_an_executemany_inserts(tables: AsyncEngine) -> None:
    statement = insert_rows(OURS, COLUMNS)
    async with tables.begin() as conn:
        await conn.execute(insert(THEIRS), rows())
        before = METRICS.total("oms_db_statements_total")
        await statement.execute(conn, rows())
        assert METRICS.total("oms_db_statements_total") - before == 1
        theirs, ours = await read(conn, THEIRS), await read(conn, OURS)
    assert ours == theirs
    assert [r[0] for r in ours] == [0, 1, 2, 3]  # serial ids in the order given
    # None in a JSONB column is JSON null (b's doc), SQL NULL only where the column says so
    assert [(r[9], r[11]) for r in ours[:2]] == [(False, True), (False, False)]
    assert ours[1][8] is None and ours[0][10] is None


async def test_conflicts_are_skipped_only_when_asked(tables: AsyncEngine) -> None:
    async with tables.begin() as conn:
        await insert_rows(OURS, COLUMNS).execute(conn, rows()[:1])
        again = [rows()[0] | {"n": 99}, rows()[1]]
        await insert_rows(OURS, COLUMNS, skip_conflicts=True).execute(conn, again)
        await insert_rows(OURS, COLUMNS, skip_conflicts=["code"]).execute(conn, again)
        found = [(r[1], r[2]) for r in await read(conn, OURS)]
    assert found == [("a", 1), ("b", None)]  # the existing row left as it was
    with pytest.raises(Exception, match="duplicate key"):
        async with tables.begin() as conn:
            await insert_rows(OURS, COLUMNS).execute(conn, rows()[:1])


async def test_updated_rows_are_what_an_executemany_updates(tables: AsyncEngine) -> None:
    changed = ["n", "amount", "at", "doc", "loose", "order"]
    new = [{"code": r["code"], **{c: v for c, v in reversed_row.items() if c in changed}}
           for r, reversed_row in zip(rows(), reversed(rows()), strict=True)]
    theirs = update(THEIRS).where(THEIRS.c.code == bindparam("key")).values(
        {c: bindparam(c) for c in changed})
    async with tables.begin() as conn:
        await conn.execute(insert(THEIRS), rows())
        await insert_rows(OURS, COLUMNS).execute(conn, rows())
        await conn.execute(theirs, [{"key": r["code"]} | {c: r[c] for c in changed} for r in new])
        await update_rows(OURS, "code", changed).execute(conn, new)
        assert await read(conn, OURS) == await read(conn, THEIRS)


async def test_upserted_rows_are_what_an_executemany_upserts(tables: AsyncEngine) -> None:
    """New rows inserted, existing ones changed as ``sets`` says (over EXCLUDED and t)."""
    statement = pg_insert(THEIRS)
    theirs = statement.on_conflict_do_update(index_elements=[THEIRS.c.code], set_={
        "n": statement.excluded.n, "doc": statement.excluded.doc,
        "at": func.coalesce(statement.excluded.at, THEIRS.c.at)})
    ours = upsert_rows(OURS, COLUMNS, ["code"], excluded("n", "doc") | {
        "at": "coalesce(EXCLUDED.at, t.at)"})
    again = [rows()[0] | {"n": 5, "at": None, "doc": None, "amount": Decimal("9.99")},
             rows()[1] | {"n": 6, "at": AT, "doc": {"new": 1}},
             rows()[2] | {"code": "z"}]
    async with tables.begin() as conn:
        await conn.execute(theirs, rows()[:2])
        await ours.execute(conn, rows()[:2])
        await conn.execute(theirs, again)
        await ours.execute(conn, again)
        assert await read(conn, OURS) == await read(conn, THEIRS)
        with pytest.raises(ValueError, match="two rows for the same code"):
            await ours.execute(conn, [rows()[0], rows()[0]])


async def test_writes_together_are_one_statement_with_the_effect_of_each(
        tables: AsyncEngine) -> None:
    """An insert into one table and an upsert of another in one round trip: each does what it
    does alone; the first one's RETURNING comes back."""
    returning = Write(insert_rows(OURS, COLUMNS).statement.text + " RETURNING code", "")
    async with tables.begin() as conn:
        await insert_rows(THEIRS, COLUMNS).execute(conn, rows()[:1])
        upsert = upsert_rows(THEIRS, COLUMNS, ["code"], excluded("n"))
        before = METRICS.total("oms_db_statements_total")
        back = await execute_together(conn, [
            Write(returning.sql, insert_rows(OURS, COLUMNS).write(rows()).rows),  # type: ignore[union-attr]
            upsert.write([rows()[0] | {"n": 41}, rows()[1]])])
        assert METRICS.total("oms_db_statements_total") - before == 1
        assert sorted(r[0] for r in back) == ["a", "b", "c", "d"]
        assert [(r[1], r[2]) for r in await read(conn, THEIRS)] == [("a", 41), ("b", None)]
        assert len(await read(conn, OURS)) == 4
        assert await execute_together(conn, []) == []
        alone = insert_rows(OURS, COLUMNS).write([rows()[0] | {"code": "e"}])
        assert await execute_together(conn, [alone]) == []  # type: ignore[list-item]
        with pytest.raises(ValueError, match="not a one-document statement"):
            await execute_together(conn, [Write("SELECT 1", "[]")])


async def test_rows_that_do_not_fit_the_statement_are_refused(tables: AsyncEngine) -> None:
    async with tables.begin() as conn:
        with pytest.raises(ValueError, match="for columns"):
            await insert_rows(OURS, COLUMNS).execute(conn, [{"code": "x"}])
        with pytest.raises(ValueError, match="two rows for the same code"):
            await update_rows(OURS, "code", ["n"]).execute(conn, [{"code": "a", "n": 1},
                                                                  {"code": "a", "n": 2}])
        await insert_rows(OURS, COLUMNS).execute(conn, [])  # nothing to write: no statement
