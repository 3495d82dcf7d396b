"""``oms stock``: put stock into a warehouse and look at levels, through the inventory HTTP API."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.settings import OmsSettings

console = Console()
stock_app = typer.Typer(help="Stock per SKU and warehouse (talks to a running inventory service).",
                        no_args_is_help=True)


def inventory_url() -> str:
    settings = OmsSettings()
    return os.environ.get("OMS_INVENTORY_URL", f"http://127.0.0.1:{settings.http_port('inventory')}")


def _call(method: str, path: str, api_key: str, **kwargs: Any) -> Any:
    url = inventory_url() + path
    try:
        response = httpx.request(method, url, headers={"X-API-Key": api_key}, timeout=30, **kwargs)
    except httpx.ConnectError:
        console.print(f"[red]cannot reach the inventory service at {url}: is `oms run` running?[/red]")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    return response.json()


@stock_app.command("receive")
def receive(sku: str, warehouse: str, quantity: int,
            reason: str = typer.Option("receipt", help="why the stock arrives (PO number, return...)"),
            api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Put QUANTITY units of SKU into WAREHOUSE (recorded as stock.received)."""
    if quantity <= 0:
        console.print("[red]quantity: must be a whole number above 0[/red]")
        raise typer.Exit(2)
    body = _call("POST", "/stock/receipts", api_key,
                 json={"sku": sku, "warehouse": warehouse, "quantity": quantity, "reason": reason})
    console.print(body)


@stock_app.command("show")
def show(sku: str = typer.Argument(None, help="one SKU; all when omitted"),
         api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Stock levels: on hand, reserved, available per SKU and warehouse."""
    body = _call("GET", f"/stock/{sku}" if sku else "/stock", api_key)
    rows = body.get("warehouses", []) if isinstance(body, dict) else body
    if isinstance(body, dict):
        rows = [{"sku": body["sku"], **row} for row in rows]
    table = Table("sku", "warehouse", "on hand", "reserved", "available")
    for row in rows if isinstance(rows, list) else []:
        table.add_row(str(row.get("sku")), str(row.get("warehouse")), str(row.get("on_hand")),
                      str(row.get("reserved")), str(row.get("available")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(stock_app, name="stock")
