"""A service's tables made by an earlier version gain what this version added to them.

``metadata.create_all`` makes missing tables but leaves an existing table as it is, so a column
or an index added in a later version was missing from every database made before it: the first
statement naming the column failed, message after message. ``create_or_upgrade`` makes the
missing tables, then adds to the existing ones each missing column (with its type, default and
NOT NULL, as the table would have been created now) and each missing index, and logs each
change. A column it cannot add to rows that exist (NOT NULL without a default, a primary key)
stops the start with the table and column named: that change needs a hand-written migration.
Columns the database has and this version does not know are left alone.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateColumn

from shared.logging import get_logger

log = get_logger(__name__)


class SchemaUpgradeError(RuntimeError):
    """The database's tables cannot be brought to this version's shape automatically."""


async def create_or_upgrade(conn: AsyncConnection, metadata: MetaData) -> list[str]:
    """Make the missing tables, add the missing columns and indexes; returns what was added
    (``table.column`` / ``index name``), in the caller's transaction."""
    await conn.run_sync(metadata.create_all)
    return await conn.run_sync(_upgrade, metadata)


def _addable(column: Column[object]) -> bool:
    return not column.primary_key and (column.nullable or column.server_default is not None)


def _upgrade(conn: Connection, metadata: MetaData) -> list[str]:
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    added: list[str] = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        refused = [column.name for column in missing if not _addable(column)]
        if refused:
            raise SchemaUpgradeError(
                f"table {table.name}: this version adds column(s) {', '.join(refused)} that the "
                "rows already there cannot be given (NOT NULL without a default, or part of the "
                "primary key); the database needs a migration by hand")
        for column in missing:
            definition = CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} "
                                 f"ADD COLUMN IF NOT EXISTS {definition}")
            added.append(f"{table.name}.{column.name}")
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn, checkfirst=True)
                added.append(str(index.name))
    for change in added:
        log.info("schema upgraded", added=change)
    return added
