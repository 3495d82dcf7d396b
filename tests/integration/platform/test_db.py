"""Database wiring: URL spellings, and creating a service's database exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import shared.db
from shared.db import create_engine, database_name, ensure_database, libpq_url, run_script
from shared.settings import with_database


@pytest_asyncio.fixture
async def new_database_url(postgres_url: str) -> AsyncIterator[str]:
    name = f"db_{uuid.uuid4().hex[:12]}"
    yield with_database(postgres_url, name)
    async with await psycopg.AsyncConnection.connect(
        libpq_url(with_database(postgres_url, "postgres")), autocommit=True
    ) as admin:
        await admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def test_instances_starting_together_create_the_database_once(new_database_url: str) -> None:
    created = await asyncio.gather(*(ensure_database(new_database_url) for _ in range(6)))
    assert sorted(created) == [False] * 5 + [True]
    assert await ensure_database(new_database_url) is False
    engine = create_engine(new_database_url, pool_size=2)
    try:
        async with engine.begin() as conn:
            await run_script(conn, "CREATE TABLE a (n int); CREATE TABLE b (n int); "
                                   "INSERT INTO a VALUES (1);")
            assert (await conn.execute(text("SELECT current_database()"))).scalar_one() == \
                database_name(new_database_url)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM a"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_failing_script_leaves_nothing_behind(new_database_url: str) -> None:
    await ensure_database(new_database_url)
    engine = create_engine(new_database_url, pool_size=1)
    try:
        with pytest.raises(Exception, match="no_such_function"):
            async with engine.begin() as conn:
                await run_script(conn, "CREATE TABLE c (n int); SELECT no_such_function();")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT to_regclass('c')"))).scalar_one() is None
    finally:
        await engine.dispose()


async def _backend_of(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_idle_past_the_limit_is_pinged_and_replaced_when_dead(
        new_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared.db, "PING_AFTER_IDLE_SECONDS", 0.2)
    await ensure_database(new_database_url)
    engine = create_engine(new_database_url, pool_size=1)
    pings: list[object] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or ping(c))
    try:
        first = await _backend_of(engine)
        assert await _backend_of(engine) == first and pings == []  # back from work: no ping
        async with await psycopg.AsyncConnection.connect(libpq_url(new_database_url),
                                                         autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        await asyncio.sleep(0.3)
        # idle past the limit: pinged, found dead, and a new connection handed out instead
        second = await _backend_of(engine)
        assert second != first and len(pings) == 1
    finally:
        await engine.dispose()
