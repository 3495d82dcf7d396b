"""The catalog table of the order service's database: the live product catalog and its history of
activity (SKUs are deactivated, never deleted: orders keep referring to them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, Numeric, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.order.domain.catalog import Catalog, CatalogItem, CatalogRef
from shared import periodic
from shared.logging import get_logger
from shared.schemaupgrade import create_or_upgrade

log = get_logger(__name__)
metadata = MetaData()

catalog_items = Table(
    "catalog_items",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("tax_rate", Numeric(5, 4), nullable=False),
    Column("aliases", JSONB, nullable=False),
    Column("low_stock_threshold", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_FIELDS = ("name", "category", "tax_rate", "aliases", "low_stock_threshold", "active")


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)


async def lock_catalog(conn: AsyncConnection) -> None:
    """Serialise catalog writers (two imports at once must not interleave their upserts)."""
    await conn.execute(text("LOCK TABLE catalog_items IN SHARE ROW EXCLUSIVE MODE"))


async def _stored(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = (await conn.execute(select(catalog_items))).mappings().all()
    return {row["sku"]: dict(row) for row in rows}


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(stored[name] == wanted[name] for name in _FIELDS)


async def _write(conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime | None) -> None:
    if not rows:
        return
    stamped = [{**row, "updated_at": now if now is not None else func.now()} for row in rows]
    for row in stamped:  # a catalog is hundreds of rows; one statement each keeps func.now() usable
        statement = insert(catalog_items).values(**row)
        await conn.execute(statement.on_conflict_do_update(
            index_elements=[catalog_items.c.sku],
            set_={name: statement.excluded[name] for name in (*_FIELDS, "updated_at")}))


async def replace_catalog(conn: AsyncConnection, catalog: Catalog, *, now: datetime | None = None
                          ) -> dict[str, int]:
    """Make the table say what ``catalog`` (a whole file) says, in the caller's transaction.

    SKUs missing from the file are marked inactive, never deleted. Unchanged rows keep their
    ``updated_at``. ``now`` comes from the service clock; without it, the database's time is used.
    """
    await lock_catalog(conn)
    stored = await _stored(conn)
    counts = {"added": 0, "updated": 0, "unchanged": 0, "deactivated": 0}
    changed: list[dict[str, Any]] = []
    for row in catalog.to_rows():
        before = stored.get(row["sku"])
        if before is None:
            counts["added"] += 1
        elif _same(before, row):
            counts["unchanged"] += 1
            continue
        else:
            counts["updated"] += 1
        changed.append(row)
    for sku, before in stored.items():
        if sku not in catalog.items and before["active"]:
            counts["deactivated"] += 1
            changed.append({**{name: before[name] for name in _FIELDS}, "sku": sku, "active": False})
    await _write(conn, changed, now)
    return counts


async def upsert_item(conn: AsyncConnection, item: CatalogItem, *, now: datetime | None = None) -> str:
    """Add or change one SKU: ``added``, ``updated`` or ``unchanged``."""
    await lock_catalog(conn)
    row = item.row()
    before = (await conn.execute(select(catalog_items).where(catalog_items.c.sku == item.sku))
              ).mappings().first()
    if before is not None and _same(dict(before), row):
        return "unchanged"
    await _write(conn, [row], now)
    return "added" if before is None else "updated"


async def load_catalog(conn: AsyncConnection) -> Catalog:
    rows = (await conn.execute(select(catalog_items).order_by(catalog_items.c.sku))).mappings().all()
    return Catalog.from_rows(dict(row) for row in rows)


async def refresh(engine: AsyncEngine, ref: CatalogRef) -> bool:
    """Reload ``ref.current`` from the table; True when it changed."""
    async with engine.connect() as conn:
        fresh = await load_catalog(conn)
    if fresh.items == ref.current.items:
        return False
    ref.current = fresh
    return True


async def follow_catalog(engine: AsyncEngine, ref: CatalogRef, interval: float = 10.0) -> None:
    """Background job: pick up catalog writes made elsewhere (``oms catalog load``, another
    instance's HTTP import) without a restart."""
    async def step() -> None:
        if await refresh(engine, ref):
            log.info("catalog reloaded", skus=len(ref.current))

    await periodic.every(interval, step, log, "catalog reload failed", wait_first=True)


async def item_rows(conn: AsyncConnection, *, skus: list[str] | None = None,
                    active: bool | None = None) -> list[dict[str, Any]]:
    """Stored rows (with ``updated_at``) for the HTTP and CLI views, by SKU."""
    query = select(catalog_items).order_by(catalog_items.c.sku)
    if skus is not None:
        query = query.where(catalog_items.c.sku.in_(skus))
    if active is not None:
        query = query.where(catalog_items.c.active.is_(active))
    return [dict(row) for row in (await conn.execute(query)).mappings().all()]
