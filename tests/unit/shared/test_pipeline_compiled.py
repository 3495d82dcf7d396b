"""``shared.pipeline`` compiles each statement once (SQLAlchemy's own cache only serves what it
executes itself), and never hands one statement's compiled form to another."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg

from shared import pipeline


def test_a_statement_is_compiled_once_and_only_for_itself() -> None:
    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    one, other = text("SELECT :a"), text("SELECT :b")
    first = pipeline._compiled(one, dialect)
    assert pipeline._compiled(one, dialect) is first
    assert str(first) == "SELECT %(a)s"
    assert str(pipeline._compiled(other, dialect)) == "SELECT %(b)s"


def test_the_cache_is_bounded() -> None:
    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    kept = [text(f"SELECT {n}") for n in range(pipeline._COMPILED_MAX + 10)]
    for statement in kept:
        assert str(pipeline._compiled(statement, dialect)) == str(statement)
    assert len(pipeline._COMPILED) <= pipeline._COMPILED_MAX
