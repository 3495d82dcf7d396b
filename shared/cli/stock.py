"""``oms stock``: receipts, adjustments, levels, ledger, warehouses, backorders via inventory's HTTP API."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from shared.cli.http import base_url, checked, send
from shared.cli.tables import print_table

console = Console()
stock_app = typer.Typer(help="Stock per SKU and warehouse (talks to a running inventory service).",
                        no_args_is_help=True)


def inventory_url() -> str:
    return base_url("inventory")


def _call(method: str, path: str, api_key: str, **kwargs: Any) -> Any:
    return checked(send("inventory", method, path, api_key, console=console, **kwargs),
                   console).json()


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
    print_table(console, table)


@stock_app.command("adjust", context_settings={"ignore_unknown_options": True})
def adjust(sku: str, warehouse: str,
           quantity: int = typer.Argument(..., help="units found (positive) or lost (negative)"),
           reason: str = typer.Option(..., "--reason", help="why: stock count, damage, loss..."),
           api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Correct on hand of SKU in WAREHOUSE by QUANTITY, with a reason (recorded as stock.adjusted)."""
    if quantity == 0:
        console.print("[red]quantity: must not be 0 (positive adds units, negative removes)[/red]")
        raise typer.Exit(2)
    if not reason.strip():
        console.print("[red]--reason: say why the stock is adjusted[/red]")
        raise typer.Exit(2)
    body = _call("POST", "/stock/adjustments", api_key,
                 json={"sku": sku, "warehouse": warehouse, "quantity": quantity, "reason": reason})
    console.print(body)


@stock_app.command("ledger")
def ledger(sku: str, limit: int = typer.Option(50, min=1, max=10_000, help="newest entries shown"),
           api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Every movement of SKU (received, reserved, released, deducted, adjusted, returned)."""
    body = _call("GET", f"/stock/{sku}/ledger", api_key, params={"limit": limit})
    table = Table("#", "when", "warehouse", "kind", "qty", "order", "reason", "by")
    for e in body.get("entries", []):
        table.add_row(str(e.get("entry_id")), str(e.get("recorded_at")), str(e.get("warehouse")),
                      str(e.get("kind")), str(e.get("quantity")), e.get("order_id") or "",
                      e.get("reason") or "", e.get("actor") or "")
    console.print(f"ledger of {body.get('sku', sku)} (newest first)")
    print_table(console, table, key=2)


@stock_app.command("warehouses")
def warehouses(api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Warehouses in serving order (lower priority number first)."""
    table = Table("warehouse", "priority", "since")
    for w in _call("GET", "/warehouses", api_key):
        table.add_row(str(w.get("code")), str(w.get("priority")), str(w.get("created_at")))
    print_table(console, table)


@stock_app.command("priority")
def priority(warehouse: str, value: int = typer.Argument(..., min=0, metavar="N",
                                                         help="lower numbers are served first"),
             api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Set WAREHOUSE's serving priority to N."""
    console.print(_call("PUT", f"/warehouses/{warehouse}/priority", api_key,
                        json={"priority": value}))


@stock_app.command("backorders")
def backorders(api_key: str = typer.Option("demo-warehouse", envvar="OMS_API_KEY")) -> None:
    """Orders waiting for stock, in the order they will be served."""
    rows = _call("GET", "/backorders", api_key)
    if not rows:
        console.print("no orders are waiting for stock")
        return
    table = Table("#", "order", "waits for", "what", "short since")
    for b in rows:
        wanted = ", ".join(f"{w['sku']} x{w['quantity']}" for w in b.get("wanted", []))
        table.add_row(str(b.get("position")), str(b.get("order_id")), str(b.get("kind")), wanted,
                      str(b.get("short_since")))
    print_table(console, table, key=2)


def register(app: typer.Typer) -> None:
    app.add_typer(stock_app, name="stock")
