"""``oms catalog``: load a catalog file into the order service's database and look SKUs up.

A running order service picks a loaded file up on its next start, within a few seconds when it
follows the table (``catalog_store.follow_catalog``), or at once when the file is sent over HTTP:
``curl -X POST -H 'X-API-Key: ...' -H 'Content-Type: text/csv' --data-binary @FILE
http://127.0.0.1:8101/catalog/import``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NoReturn

import psycopg
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from shared.cli.tables import print_table
from shared.runtime import endpoints

console = Console()
catalog_app = typer.Typer(help="The product catalog in the order service's database.",
                          no_args_is_help=True)
DATABASE_OPTION = typer.Option(None, "--database-url", help="the order service's database "
                               "(default: OMS_ORDER_DATABASE_URL, else oms_order on "
                               "OMS_DATABASE_URL, else the running `oms run`)")

DATABASE_ERRORS = (OSError, psycopg.Error, SQLAlchemyError)


def _unreachable(error: Exception) -> NoReturn:
    console.print("[red]cannot use the order database:[/red]")
    console.print(str(error).splitlines()[0] if str(error) else repr(error), markup=False)
    raise typer.Exit(2)


def order_database_url(option: str | None) -> str:
    url = option or endpoints.database_url("order")
    if not url:
        console.print("[red]no order database: pass --database-url, or set OMS_ORDER_DATABASE_URL or "
                      "OMS_DATABASE_URL. With the embedded runtime (`oms run`), POST the file to "
                      "http://127.0.0.1:8101/catalog/import instead (Content-Type: text/csv).[/red]")
        raise typer.Exit(2)
    return url


async def _load(url: str, file: Path) -> dict[str, int]:
    from services.order import catalog_store
    from services.order.domain.catalog import parse_catalog
    from shared.db import create_engine, ensure_database

    catalog = parse_catalog(file)
    await ensure_database(url)
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await catalog_store.create_schema(conn)
            return await catalog_store.replace_catalog(conn, catalog)
    finally:
        await engine.dispose()


@catalog_app.command("load")
def load(file: Path = typer.Argument(..., help="CSV: sku,name,category,tax_rate,aliases,"
                                     "low_stock_threshold,active"),
         database_url: str | None = DATABASE_OPTION) -> None:
    """Replace the catalog with FILE: new SKUs added, changed ones updated, missing ones deactivated."""
    from services.order.domain.catalog import CatalogError, parse_catalog

    try:
        parse_catalog(file)  # refuse a bad file before touching any database
    except CatalogError as error:
        console.print("[red]the catalog file was not loaded:[/red]")
        console.print(str(error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    url = order_database_url(database_url)
    try:
        counts = asyncio.run(_load(url, file))
    except DATABASE_ERRORS as error:
        _unreachable(error)
    console.print(", ".join(f"{name} {count}" for name, count in counts.items()))
    console.print("a running order service uses it after its next start (or send the file to "
                  "POST /catalog/import to apply it at once)")


async def _items(url: str) -> list[dict[str, object]]:
    from services.order import catalog_store
    from shared.db import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list(await catalog_store.item_rows(conn))
    finally:
        await engine.dispose()


@catalog_app.command("show")
def show(sku: str | None = typer.Argument(None, help="one SKU, any spelling; all when omitted"),
         database_url: str | None = DATABASE_OPTION) -> None:
    """The catalog as stored, or the SKU any spelling names (``x100`` -> X-100)."""
    from services.order.domain.catalog import Catalog

    try:
        rows = asyncio.run(_items(order_database_url(database_url)))
    except ProgrammingError:
        console.print("[red]no catalog is stored in this database yet: run `oms catalog load FILE`[/red]")
        raise typer.Exit(1) from None
    except DATABASE_ERRORS as error:
        _unreachable(error)
    if sku is not None:
        catalog = Catalog.from_rows(rows)
        item = catalog.lookup(sku)
        if item is None:
            near = catalog.suggestions(sku)
            console.print(f"[red]unknown SKU {sku!r}[/red]"
                          + (f" (did you mean {', '.join(near)}?)" if near else ""), highlight=False)
            raise typer.Exit(1)
        rows = [row for row in rows if row["sku"] == item.sku]
    table = Table("sku", "name", "category", "tax rate", "aliases", "low stock at", "active")
    for row in rows:
        aliases = row["aliases"] if isinstance(row["aliases"], list) else []
        table.add_row(str(row["sku"]), str(row["name"]), str(row["category"]), str(row["tax_rate"]),
                      " | ".join(map(str, aliases)), str(row["low_stock_threshold"]),
                      "yes" if row["active"] else "no")
    print_table(console, table)


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
