"""``oms billing``: invoices, receivables, payments, credit notes and the invoice export, through
the billing service's HTTP API (``shared/cli/http.py``: OMS_BILLING_URL, else the running
``oms run``'s billing, else 127.0.0.1 on OMS_BILLING_HTTP_PORT)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.cli.http import base_url, checked, send
from shared.cli.tables import print_table

console = Console()
billing_app = typer.Typer(help="Invoices, receivables, payments and credit notes (talks to a "
                               "running billing service).", no_args_is_help=True)

ApiKey = typer.Option("demo-finance", "--api-key", envvar="OMS_API_KEY",
                      help="API key sent as X-API-Key")


def billing_url() -> str:
    return base_url("billing")


def _request(method: str, path: str, api_key: str, **kwargs: Any) -> httpx.Response:
    return checked(send("billing", method, path, api_key, console=console, **kwargs), console)


def _get(path: str, api_key: str, **params: Any) -> Any:
    wanted = {k: v for k, v in params.items() if v is not None}
    return _request("GET", path, api_key, params=wanted).json()


def _table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    print_table(console, table)


INVOICE_COLUMNS = ["voucher_number", "kind", "order_id", "issued_at", "due_date", "currency",
                   "total", "paid_total", "outstanding", "status"]


@billing_app.command("invoices")
def invoices(order_id: str, api_key: str = ApiKey) -> None:
    """The invoices of ORDER_ID (voided ones too), newest first."""
    _table(f"invoices of {order_id}", INVOICE_COLUMNS,
           _get("/invoices", api_key, order_id=order_id))


@billing_app.command("invoice")
def invoice(voucher: str, api_key: str = ApiKey) -> None:
    """One invoice: its lines, the payments allocated to it, its credit notes."""
    found = _get(f"/invoices/{voucher}", api_key)
    _table(f"invoice {found['voucher_number']} ({found['kind']}, {found['status']}, due "
           f"{found['due_date']})", INVOICE_COLUMNS, [found])
    _table("lines", ["line_no", "kind", "description", "sku", "quantity", "gross", "net",
                     "tax_rate", "tax"], found.get("lines", []))
    if found.get("payments"):
        _table("payments allocated", ["payment_id", "method", "amount"], found["payments"])
    if found.get("credit_notes"):
        _table("credit notes", ["voucher_number", "reason", "total"], found["credit_notes"])


@billing_app.command("receivables")
def receivables(as_of: str = typer.Option(None, "--as-of", help="day to age against (YYYY-MM-DD;"
                                          " default today)"),
                api_key: str = ApiKey) -> None:
    """Open invoices with their days past due, and the totals per aging bucket."""
    body = _get("/receivables", api_key, as_of=as_of)
    _table(f"receivables as of {body['as_of']}",
           ["voucher_number", "order_id", "customer_id", "due_date", "days_past_due", "bucket",
            "currency", "outstanding"], body["invoices"])
    buckets = [*body["buckets"], "total"]
    _table("totals per bucket", ["currency", *buckets],
           [{"currency": cur, **totals} for cur, totals in body["totals"].items()])


@billing_app.command("payments")
def payments(order: str = typer.Option(None, "--order", help="one order's payments"),
             method: str = typer.Option(None, "--method", help="only this payment method"),
             api_key: str = ApiKey) -> None:
    """Payments recorded, newest first."""
    _table("payments", ["payment_id", "order_id", "method", "ledger_category", "kind", "amount",
                        "currency", "received_at", "source"],
           _get("/payments", api_key, order_id=order, method=method))


@billing_app.command("pay")
def pay(order_id: str, payment_id: str, amount: str,
        method: str = typer.Option("bank_transfer", help="payment method"),
        currency: str = typer.Option("CNY", help="currency of the amount"),
        received_at: str = typer.Option(None, help="when it arrived (ISO 8601 with offset)"),
        api_key: str = ApiKey) -> None:
    """Record a payment that arrived outside the storefronts (a bank transfer, usually)."""
    body = {"order_id": order_id, "payment_id": payment_id, "method": method, "amount": amount,
            "currency": currency}
    if received_at:
        body["received_at"] = received_at
    response = _request("POST", "/payments", api_key, json=body)
    verb = "recorded" if response.status_code == 201 else "already recorded"
    console.print(f"payment {payment_id} {verb}: {response.json()}")


@billing_app.command("credit-notes")
def credit_notes(order: str = typer.Option(None, "--order", help="one order's credit notes"),
                 api_key: str = ApiKey) -> None:
    """Credit notes (cancellations, returns), newest first."""
    _table("credit notes", ["voucher_number", "order_id", "invoice_voucher_number", "reason",
                            "currency", "net", "tax", "total", "revenue_reversed", "issued_at"],
           _get("/credit-notes", api_key, order_id=order))


@billing_app.command("refunds")
def refunds(order: str = typer.Option(None, "--order", help="one order's refunds"),
            api_key: str = ApiKey) -> None:
    """Refunds issued, newest first."""
    _table("refunds", ["refund_id", "order_id", "payment_id", "method", "amount", "currency",
                       "credit_note_voucher_number", "issued_at"],
           _get("/refunds", api_key, order_id=order))


@billing_app.command("export")
def export(file: Path = typer.Argument(..., help="CSV file to write"),
           start: str = typer.Option(..., "--from", help="first issue day (YYYY-MM-DD)"),
           end: str = typer.Option(..., "--to", help="last issue day (YYYY-MM-DD)"),
           api_key: str = ApiKey) -> None:
    """Write the invoices issued from --from to --to (days included) to FILE as CSV."""
    for name, value in (("--from", start), ("--to", end)):
        try:
            date.fromisoformat(value)
        except ValueError:
            console.print(f"[red]{name}: {value!r} is not a day like 2026-11-21[/red]")
            raise typer.Exit(2) from None
    response = _request("GET", "/invoices/export.csv", api_key, params={"from": start, "to": end})
    file.write_text(response.text, encoding="utf-8")
    count = max(response.text.count("\n") - 1, 0)
    console.print(f"{count} invoice(s) issued {start} to {end} written to {file}")


def register(app: typer.Typer) -> None:
    app.add_typer(billing_app, name="billing")
