"""A database made by an earlier version gains the columns and indexes this version added to
its tables when the service starts (``shared.schemaupgrade``); what cannot be added safely stops
the start with the table and column named, and nothing is half done."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, Table, Text, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.schemaupgrade import SchemaUpgradeError, create_or_upgrade

pytestmark = pytest.mark.integration


def things(*extra: Column[object] | Index) -> MetaData:
    metadata = MetaData()
    Table("things", metadata, Column("id", Integer, primary_key=True),
          Column("name", Text, nullable=False), *extra)
    return metadata


async def columns(engine: AsyncEngine, table: str) -> dict[str, dict[str, object]]:
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    return {c["name"]: c for c in found}


async def test_a_table_of_an_earlier_version_gains_the_new_columns_and_indexes(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await create_or_upgrade(conn, things()) == []
        await conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'first')"))
    later = things(Column("note", Text), Column("count", Integer, nullable=False,
                                                 server_default="0"),
                   Index("things_by_name", "name"))
    Table("others", later, Column("id", Integer, primary_key=True))
    async with engine.begin() as conn:
        added = await create_or_upgrade(conn, later)
    assert added == ["things.note", "things.count", "things_by_name"]
    found = await columns(engine, "things")
    assert found["count"]["nullable"] is False and found["note"]["nullable"] is True
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT name, note, count FROM things"))).one()
        assert tuple(row) == ("first", None, 0)  # the row already there got the default
        assert (await conn.execute(text("SELECT to_regclass('others') IS NOT NULL"))).scalar()
    async with engine.begin() as conn:
        assert await create_or_upgrade(conn, later) == []  # nothing left to add


async def test_a_column_the_rows_cannot_be_given_stops_the_start_and_nothing_changes(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await create_or_upgrade(conn, things())
    later = things(Column("note", Text), Column("weight", Integer, nullable=False))
    with pytest.raises(SchemaUpgradeError, match=r"table things: .*weight.*NOT NULL"):
        async with engine.begin() as conn:
            await create_or_upgrade(conn, later)
    assert set(await columns(engine, "things")) == {"id", "name"}  # not even note


@pytest.mark.parametrize("module", [
    "services.order.store", "services.order.catalog_store", "services.order.duplicate_store",
    "services.inventory.store.tables", "services.billing.store", "services.notify.store",
    "services.reconcile.store", "services.reconcile.bank.store"])
async def test_every_service_schema_is_made_once_and_then_left_alone(
        engine: AsyncEngine, module: str) -> None:
    """A second start finds nothing to add: the check never mistakes this version's own tables
    (their index names, their defaults) for an earlier version's."""
    schema = importlib.import_module(module)
    async with engine.begin() as conn:
        await schema.create_schema(conn)
    async with engine.begin() as conn:
        assert await create_or_upgrade(conn, schema.metadata) == []


async def test_notify_and_reconcile_tables_of_earlier_versions_are_upgraded(
        engine: AsyncEngine) -> None:
    """The columns earlier sessions added by hand-written ALTERs (notify's delivery columns,
    reconcile's sheet revision) now come through the same upgrade."""
    notify = importlib.import_module("services.notify.store")
    reconcile = importlib.import_module("services.reconcile.store")
    async with engine.begin() as conn:
        await notify.create_schema(conn)
        await reconcile.create_schema(conn)
        for statement in ("ALTER TABLE notifications DROP COLUMN attempts",
                          "ALTER TABLE notifications DROP COLUMN html_body",
                          "ALTER TABLE order_customers DROP COLUMN address",
                          "ALTER TABLE order_fact_sheets DROP COLUMN revision"):
            await conn.execute(text(statement))
    async with engine.begin() as conn:
        await notify.create_schema(conn)
        await reconcile.create_schema(conn)
    assert {"attempts", "html_body"} <= set(await columns(engine, "notifications"))
    assert "address" in await columns(engine, "order_customers")
    assert (await columns(engine, "order_fact_sheets"))["revision"]["nullable"] is False
