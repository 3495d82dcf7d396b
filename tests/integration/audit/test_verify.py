"""`oms audit verify` on real PostgreSQL: intact stores pass; a row changed or deleted behind the
system's back (trigger disabled) fails, naming the first broken event."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.audit.support import cli, database_env, invoke, order_lifecycle

pytestmark = pytest.mark.integration

APP = cli("shared.cli.audit")


async def tamper(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        await conn.execute(text(statement))
        await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))


async def event_id(engine: AsyncEngine, stream: str, version: int) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(
            text("SELECT event_id FROM events WHERE stream_id = :s AND stream_version = :v"),
            {"s": stream, "v": version})).scalar_one())


async def test_an_intact_store_passes(engine: AsyncEngine, database_url: str, tmp_path: Path
                                      ) -> None:
    await order_lifecycle(engine, "O-A")
    await order_lifecycle(engine, "O-B")
    result = await invoke(APP, ["audit", "verify", "--service", "order"],
                          database_env(tmp_path, order=database_url))
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


async def test_an_edited_payload_is_named(engine: AsyncEngine, database_url: str, tmp_path: Path
                                          ) -> None:
    await order_lifecycle(engine, "O-A")
    await order_lifecycle(engine, "O-B")
    edited = await event_id(engine, "O-B", 3)
    await tamper(engine, "UPDATE events SET payload = jsonb_set(payload, '{paid_amount}', "
                         "'\"4.00\"') WHERE stream_id = 'O-B' AND stream_version = 3")
    result = await invoke(APP, ["audit", "verify", "--service", "all", "--json"],
                          database_env(tmp_path, order=database_url))
    assert result.exit_code == 1, result.output
    assert '"event_id": "' + edited in result.output
    assert "edited after it was appended" in result.output
    assert '"stream_version": 3' in result.output


async def test_a_deleted_middle_event_is_named(engine: AsyncEngine, database_url: str,
                                               tmp_path: Path) -> None:
    await order_lifecycle(engine, "O-A")
    follower = await event_id(engine, "O-A", 3)
    await tamper(engine, "DELETE FROM events WHERE stream_id = 'O-A' AND stream_version = 2")
    result = await invoke(APP, ["audit", "verify", "--service", "order"],
                          database_env(tmp_path, order=database_url))
    assert result.exit_code == 1
    assert "O-A" in result.output and "version 3" in result.output
    assert follower in result.output.replace("\n", "")
    assert "missing" in result.output


async def test_a_reordered_global_position_is_named(engine: AsyncEngine, database_url: str,
                                                    tmp_path: Path) -> None:
    await order_lifecycle(engine, "O-A")
    await tamper(engine, "UPDATE events SET position = 0 WHERE stream_id = 'O-A' "
                         "AND stream_version = 3")
    result = await invoke(APP, ["audit", "verify", "--service", "order", "--json"],
                          database_env(tmp_path, order=database_url))
    assert result.exit_code == 1
    assert "goes backwards" in result.output


async def test_no_database_is_a_clear_error(tmp_path: Path) -> None:
    result = await invoke(APP, ["audit", "verify"], database_env(tmp_path))
    assert result.exit_code == 2
    assert "no database found" in result.output
