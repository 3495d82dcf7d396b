"""``oms reconcile``: an order's fact sheet, open discrepancies and the summary, over reconcile's HTTP API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.cli.http import base_url, checked, send
from shared.cli.tables import print_table

console = Console()
reconcile_app = typer.Typer(
    help="Cross-service consistency: fact sheets and discrepancies (talks to a running reconcile "
         "service).", no_args_is_help=True)

API_KEY = typer.Option("demo-auditor", envvar="OMS_API_KEY", help="X-API-Key (any role may read)")
AS_JSON = typer.Option(False, "--json", help="print the service's JSON instead of tables")


def reconcile_url() -> str:
    """OMS_RECONCILE_URL, else the running `oms run`'s reconcile, else OMS_RECONCILE_HTTP_PORT."""
    return base_url("reconcile")


def _get(path: str, api_key: str, **params: Any) -> Any:
    return checked(send("reconcile", "GET", path, api_key, console=console, params=params),
                   console).json()


def _print_json(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False))


def _discrepancy_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("order", "kind", "expected", "actual", "since", "resolved"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["order_id"], row["kind"], row["expected"], row["actual"], row["since"],
                      row["resolved_at"] or "[red]open[/red]")
    return table


@reconcile_app.command("status")
def status(order_id: str, api_key: str = API_KEY, as_json: bool = AS_JSON) -> None:
    """One order: consistent or pending, each finding, and its open discrepancies."""
    body = _get(f"/orders/{order_id}", api_key)
    if as_json:
        _print_json(body)
        return
    colour = "green" if body["status"] == "consistent" else "yellow"
    console.print(f"[bold]{order_id}[/bold]: [{colour}]{body['status']}[/{colour}] "
                  f"since {body['status_since']}")
    facts = body["facts"]
    held = {sku: units for sku, units in facts["held"].items() if units}
    console.print(f"  ordered {facts['ordered']}, held {held}, shipped {facts['shipped']}; "
                  f"invoiced {facts['invoiced_total']}, credited {facts['credited_total']}, "
                  f"paid {facts['paid_total']}, refunded {facts['refunded_total']} {facts['currency']}",
                  highlight=False)
    for finding in body["findings"]:
        label = "waiting" if finding["waiting"] else "finding"
        console.print(f"  [yellow]{label}[/yellow] {finding['kind']}: {finding['reason']} "
                      f"(since {finding['since']})", highlight=False)
    if body["open_discrepancies"]:
        print_table(console, _discrepancy_table(body["open_discrepancies"], "Open discrepancies"))


@reconcile_app.command("discrepancies")
def discrepancies(show_all: bool = typer.Option(False, "--all", help="resolved ones too"),
                  kind: str = typer.Option(None, help="only this kind"),
                  api_key: str = API_KEY, as_json: bool = AS_JSON) -> None:
    """Open discrepancies (``--all``: resolved ones too), oldest first."""
    params: dict[str, Any] = {"open": str(not show_all).lower()}
    if kind:
        params["kind"] = kind
    body = _get("/discrepancies", api_key, **params)
    if as_json:
        _print_json(body)
        return
    rows = body["discrepancies"]
    title = f"{'All' if show_all else 'Open'} discrepancies ({len(rows)}; grace {body['grace_seconds']:g}s)"
    print_table(console, _discrepancy_table(rows, title))


@reconcile_app.command("summary")
def summary(api_key: str = API_KEY, as_json: bool = AS_JSON) -> None:
    """Orders consistent and pending, and open discrepancies by kind."""
    body = _get("/summary", api_key)
    if as_json:
        _print_json(body)
        return
    console.print(f"orders {body['orders']}: consistent {body['consistent']}, pending {body['pending']}; "
                  f"open discrepancies {body['open_discrepancies']}", highlight=False)
    if body["by_kind"]:
        table = Table("kind", "open")
        for kind, count in body["by_kind"].items():
            table.add_row(kind, str(count))
        print_table(console, table)
    for item in body["pending_orders"]:
        console.print(f"  [yellow]pending[/yellow] {item['order_id']}: {'; '.join(item['reasons'])}",
                      highlight=False)


@reconcile_app.command("report")
def report(by: str = typer.Option("day", "--by", help="day | channel | customer | salesperson"),
           fmt: str = typer.Option("table", "--format", help="table | csv | html | json"),
           start: str = typer.Option(None, "--from", help="first day (YYYY-MM-DD)"),
           end: str = typer.Option(None, "--to", help="last day (YYYY-MM-DD)"),
           api_key: str = API_KEY) -> None:
    """Orders, amounts, invoiced, paid, bank-matched and open discrepancies per BY."""
    if fmt not in ("table", "csv", "html", "json"):
        console.print(f"[red]--format {fmt!r}: table, csv, html or json[/red]")
        raise typer.Exit(2)
    params: dict[str, Any] = {"format": "json" if fmt == "table" else fmt}
    if start:
        params["from"] = start
    if end:
        params["to"] = end
    url = f"{reconcile_url()}/reports/{by}"
    try:
        response = httpx.get(url, headers={"X-API-Key": api_key}, params=params, timeout=60)
    except httpx.ConnectError:
        console.print(f"[red]cannot reach the reconcile service at {url}: is `oms run` running?[/red]")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/red] {response.text}", highlight=False)
        raise typer.Exit(1)
    if fmt in ("csv", "html"):
        typer.echo(response.text, nl=False)
        return
    body = response.json()
    if fmt == "json":
        _print_json(body)
        return
    columns = [body["dimension"], "currency", "orders", "amount", "invoiced", "paid", "matched",
               "open_discrepancies"]
    table = Table(*columns, title=f"report per {body['dimension']}")
    for row in body["rows"]:
        table.add_row(*(str(row[c]) for c in columns))
    print_table(console, table)


def register(app: typer.Typer) -> None:
    app.add_typer(reconcile_app, name="reconcile")
