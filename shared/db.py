"""Database wiring: URLs, engines and database creation for a service's own PostgreSQL store."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.expression import Executable

from shared.metrics import METRICS


def _url(url: str | URL) -> URL:
    return make_url(url) if isinstance(url, str) else url


def sqlalchemy_url(url: str | URL) -> str:
    """The async SQLAlchemy spelling (psycopg 3 driver) of any PostgreSQL URL."""
    return _url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str | URL) -> str:
    """The plain libpq spelling, for raw psycopg connections (LISTEN, COPY, admin)."""
    return _url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str | URL) -> str:
    name = _url(url).database
    if not name:
        raise ValueError(f"database URL names no database: {url}")
    return name


def json_dumps(value: Any) -> bytes | str:
    """JSON(B) parameters through orjson; what it refuses (an int beyond 64 bits, say) through the
    standard library, as SQLAlchemy would have by default."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value)


def _plain(value: Any) -> str:
    """What orjson does not write itself: Decimals as their strings (numeric keeps the scale)."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return _plain(value)


def json_document(rows: Any) -> str:
    """Many rows as one JSON text parameter (for ``jsonb_to_recordset``): aware datetimes, dates
    and UUIDs in ISO 8601 and Decimals as their strings, as PostgreSQL reads them; what orjson
    refuses (an int beyond 64 bits) through the standard library, with the same spellings."""
    try:
        return orjson.dumps(rows, default=_plain, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(rows, default=_iso)


# orjson reads an integer beyond 64 bits as a float (JSONB keeps every digit): a document with
# 19 digits in a row anywhere goes through the standard library, which keeps them exact. (Every
# digit mapped to "9", the rest to " ", then one substring search: a regex is ten times slower.)
_DIGITS = bytes(57 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_RUN = b"9" * 19


def json_loads(data: str | bytes) -> Any:
    """JSON(B) columns through orjson; the standard library reads what orjson would not read
    exactly (long integers) or at all (lone surrogates, NaN)."""
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    if _LONG_RUN in raw.translate(_DIGITS):
        return json.loads(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(data)


def create_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        sqlalchemy_url(url),
        json_serializer=json_dumps,
        json_deserializer=json_loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "before_cursor_execute", _count_statement)
    _ping_when_idle(engine)
    return engine


# A pooled connection that sat unused this long is pinged before it is handed out (a restarted
# or restarting server, a killed backend); one back from work a moment ago is not. SQLAlchemy's
# pre-ping pinged on every checkout: a round trip per transaction, on a busy 2-core machine
# about 2 ms of each batch's and each relay cycle's wall time.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "oms_idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)  # None: fresh from connect
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # as pre-ping does: this connection is gone, and so are the others pooled with it;
            # the pool connects anew and hands that one out
            raise exc.InvalidatePoolError(f"ping after idle failed: {error}") from error

    event.listen(engine.sync_engine.pool, "checkin", checkin)
    event.listen(engine.sync_engine.pool, "checkout", checkout)


def _count_statement(*_: Any) -> None:
    """Statements sent to PostgreSQL (``/metrics``): round trips are what a handler costs most."""
    METRICS.inc("oms_db_statements_total")


async def ensure_database(url: str | URL) -> bool:
    """Create the database named in ``url`` when it is missing. True when it was created."""
    target = _url(url)
    name = database_name(target)
    admin = libpq_url(target.set(database="postgres"))
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        ).fetchone()
        if row:
            return False
        try:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            # Another instance created it first (a concurrent CREATE DATABASE of the same name
            # fails on pg_database's unique index rather than with DuplicateDatabase).
            return False
        return True


def drop_databases(server_url: str | URL, names: Iterable[str]) -> None:
    """Drop these databases of ``server_url``'s server (sessions on them are ended)."""
    admin = libpq_url(_url(server_url).set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


async def run_script(conn: AsyncConnection, script: str) -> None:
    """Run a multi-statement DDL script inside the caller's transaction (no bind parameters)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.execute(script)


async def copy_rows(source: AsyncConnection, target: AsyncConnection, query: Executable,
                    into: Executable, page: int = 5000) -> None:
    """Stream ``query``'s rows from one database into ``into`` (an insert taking the rows as
    named parameters) on another, ``page`` rows per executemany (``oms replay``'s carry-overs)."""
    result = await source.stream(query)
    async for part in result.mappings().partitions(page):
        await target.execute(into, [dict(row) for row in part])
