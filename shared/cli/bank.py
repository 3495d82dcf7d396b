"""``oms bank``: import a bank statement CSV into reconcile and list the bank lines and open items."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table

from shared.cli.http import base_url, checked, send
from shared.cli.tables import print_table

console = Console()
bank_app = typer.Typer(help="Bank statements matched to invoices (talks to a running reconcile "
                            "service).", no_args_is_help=True)
ApiKey = typer.Option("demo-finance", "--api-key", envvar="OMS_API_KEY",
                      help="API key sent as X-API-Key (import needs finance/finance_director/admin)")
AS_JSON = typer.Option(False, "--json", help="print the service's JSON instead of tables")


def reconcile_url() -> str:
    """OMS_RECONCILE_URL, else the running `oms run`'s reconcile, else the default port."""
    return base_url("reconcile")


IMPORT_SECONDS = 1800.0  # a statement of hundreds of thousands of lines takes minutes


def _request(method: str, path: str, api_key: str, content_type: str | None = None,
             seconds: float = 120.0, **kwargs: Any) -> Any:
    try:
        response = send("reconcile", method, path, api_key, console=console,
                        headers={"Content-Type": content_type} if content_type else None,
                        timeout=httpx.Timeout(seconds, connect=10.0), **kwargs)
    except httpx.TimeoutException:
        console.print(f"[red]no answer from the reconcile service within {seconds:g} s[/red] "
                      f"({method} {path}). An import still running there is committed or rolled "
                      "back as a whole: `oms bank lines` shows what is in, and importing the same "
                      "file again is safe (lines already imported are skipped).", highlight=False)
        raise typer.Exit(1) from None
    return checked(response, console).json()


@bank_app.command("import")
def import_statement(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="the statement CSV (UTF-8, UTF-8 with BOM, or GBK)"),
    fmt: str = typer.Option("standard", "--format", help="standard | icbc"),
    window_days: int = typer.Option(None, "--window-days", help="date window (default: the service's)"),
    tolerance: str = typer.Option(None, "--tolerance", help="partial/overpayment tolerance amount"),
    show: int = typer.Option(20, "--show", min=0, help="unmatched and flagged lines listed "
                             "(the rest: `oms bank lines --status unmatched`, or --json)"),
    api_key: str = ApiKey, as_json: bool = AS_JSON,
) -> None:
    """Import FILE: each bad row refused with its line, column and rule; the rest matched.

    Importing the same file again has no second effect.
    """
    if fmt not in ("standard", "icbc"):
        console.print(f"[red]--format {fmt!r}: standard or icbc[/red]")
        raise typer.Exit(2)
    params: dict[str, Any] = {"format": fmt}
    if window_days is not None:
        params["window_days"] = window_days
    if tolerance is not None:
        params["tolerance"] = tolerance
    body = _request("POST", "/bank/statements", api_key, params=params, content=file.read_bytes(),
                    content_type="text/csv", seconds=IMPORT_SECONDS)
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    # flagged: a match with a difference, or a line left to a person (ambiguous, beyond the
    # tolerance); said apart, so "matched 1 (flagged 1)" never means an unmatched line
    flagged = [d["matched"] for d in body["decisions"] if d["flagged"]]
    console.print(f"{file}: {body['rows_read']} row(s) read; imported {body['imported']}, "
                  f"already imported {body['already_imported']}, refused {body['refused']}; "
                  f"matched {body['matched']} (flagged {sum(flagged)}), unmatched "
                  f"{body['unmatched']} (flagged {len(flagged) - sum(flagged)}) (window "
                  f"{body['window_days']} days, tolerance {body['tolerance']})", highlight=False)
    for error in body["errors"]:
        console.print(f"  [red]line {error['line']}[/red] {error['column']}: {error['rule']}",
                      highlight=False)
    noted = [d for d in body["decisions"] if d["flagged"] or not d["matched"]]
    for decision in noted[:show]:
        label = "flagged" if decision["matched"] else "unmatched"
        console.print(f"  [yellow]{label}[/yellow] {decision['transaction_id']}: "
                      f"{decision['reason']}", highlight=False)
    if len(noted) > show:
        console.print(f"  ... and {len(noted) - show:,} more unmatched or flagged: `oms bank lines "
                      "--status unmatched`, or --show N", highlight=False)
    if body["errors"]:
        raise typer.Exit(1)


@bank_app.command("rematch")
def rematch(api_key: str = ApiKey) -> None:
    """Match the unmatched money-in lines again (invoices issued after the money arrived).

    Lines finance unmatched by hand are left to be matched by hand."""
    body = _request("POST", "/bank/rematch", api_key)
    console.print(f"{body['tried']} unmatched line(s) tried, {body['matched']} matched now",
                  highlight=False)
    for decision in body["decisions"]:
        console.print(f"  {decision['transaction_id']}: {decision['rule']} {decision['reason']}",
                      highlight=False)


@bank_app.command("lines")
def lines(status: str = typer.Option(None, help="matched | unmatched"),
          start: datetime = typer.Option(None, "--from", formats=["%Y-%m-%d"],
                                         help="first booking day"),
          end: datetime = typer.Option(None, "--to", formats=["%Y-%m-%d"],
                                       help="last booking day"),
          limit: int = typer.Option(1000, min=1, max=10000, help="at most this many lines"),
          api_key: str = ApiKey, as_json: bool = AS_JSON) -> None:
    """Bank lines imported, oldest booking day first, with the rule, score and tolerance of each
    match."""
    wanted = {"status": status, "limit": limit, "from": start and start.date().isoformat(),
              "to": end and end.date().isoformat()}
    body = _request("GET", "/bank/lines", api_key,
                    params={k: v for k, v in wanted.items() if v is not None})
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    more = f"; the first {limit}, --limit for more" if body["count"] >= limit else ""
    table = Table(title=f"bank lines ({body['count']}{more})")
    for column in ("transaction", "booked", "amount", "status", "rule", "score", "difference",
                   "invoices", "reason"):
        table.add_column(column, overflow="fold")
    for line in body["lines"]:
        table.add_row(line["transaction_id"], line["booked_on"], f"{line['amount']} {line['currency']}",
                      line["status"] + (" (flagged)" if line["flagged"] else ""), line["rule"],
                      line["score"], line["difference"],
                      ", ".join(a["voucher_number"] for a in line["allocations"]), line["reason"])
    print_table(console, table)
    for hint in next_steps(body["lines"]):
        console.print(hint, highlight=False, soft_wrap=True)


def next_steps(found: list[dict[str, Any]]) -> list[str]:
    """What finance can do with the lines that wait for a person: a flagged match is confirmed
    (billing then books it) or undone, an unmatched money-in line matched by hand."""
    flagged = [line["transaction_id"] for line in found
               if line["status"] == "matched" and line["flagged"]]
    waiting = [line for line in found if line["status"] == "unmatched"
               and Decimal(line["amount"]) > 0]
    hints: list[str] = []
    if flagged:
        hints.append("Flagged matches wait for finance (billing books only what is not flagged): "
                     "once checked, confirm each or undo it:")
        hints += [f"  oms bank confirm {txn}   |   oms bank unmatch {txn} --note WHY"
                  for txn in flagged]
    if waiting:
        hints.append("Unmatched money in: match each by hand to the invoice(s) it pays "
                     "(VOUCHER or VOUCHER=AMOUNT):")
        for line in waiting:
            candidates = line["candidates"]
            chosen = candidates[0] if len(candidates) == 1 else "VOUCHER"
            hints.append(f"  oms bank match {line['transaction_id']} {chosen}"
                         + (f"   (candidates: {', '.join(candidates)})" if len(candidates) > 1
                            else ""))
    return hints


def _print_decision(body: dict[str, Any]) -> None:
    parts = ", ".join(f"{a['voucher_number']} {a['applied']}" for a in body["allocations"])
    console.print(f"{body['transaction_id']} ({body['amount']} {body['currency']}): "
                  f"{body['status']}{' to ' + parts if parts else ''}", highlight=False)
    console.print(f"  {body['reason']}", highlight=False)
    if body["billing_books"]:
        console.print("  billing books " + ", ".join(a["payment_id"] for a in body["allocations"])
                      + " (oms billing payments ORDER shows it)", highlight=False)


def _parts(invoices: list[str]) -> list[dict[str, str]]:
    parts = []
    for given in invoices:
        voucher, sign, amount = given.partition("=")
        if not voucher or (sign and not amount):
            console.print(f"[red]{given!r}: VOUCHER or VOUCHER=AMOUNT (e.g. INV-2026-000001=95.00)"
                          "[/red]", highlight=False)
            raise typer.Exit(2)
        parts.append({"voucher_number": voucher, **({"amount": amount} if amount else {})})
    return parts


@bank_app.command("match")
def match(transaction_id: str = typer.Argument(..., help="the bank line's transaction id"),
          invoices: list[str] = typer.Argument(..., help="VOUCHER (what it owes, at most what "
                                                "is left of the line) or VOUCHER=AMOUNT"),
          note: str = typer.Option("", "--note", help="why (kept in the audit trail)"),
          api_key: str = ApiKey, as_json: bool = AS_JSON) -> None:
    """Match an unmatched money-in line by hand to the invoice(s) it pays; billing books each."""
    body = _request("POST", f"/bank/lines/{quote(transaction_id, safe='')}/match", api_key,
                    json={"invoices": _parts(invoices), "note": note})
    _show(body, as_json)


@bank_app.command("confirm")
def confirm(transaction_id: str = typer.Argument(..., help="the bank line's transaction id"),
            note: str = typer.Option("", "--note", help="what was checked (kept in the audit "
                                     "trail)"),
            api_key: str = ApiKey, as_json: bool = AS_JSON) -> None:
    """Confirm a flagged match (a difference within the tolerance): billing then books it."""
    body = _request("POST", f"/bank/lines/{quote(transaction_id, safe='')}/confirm", api_key,
                    json={"note": note})
    _show(body, as_json)


@bank_app.command("unmatch")
def unmatch(transaction_id: str = typer.Argument(..., help="the bank line's transaction id"),
            note: str = typer.Option(..., "--note", help="why the match is wrong (required: "
                                     "kept in the audit trail)"),
            api_key: str = ApiKey, as_json: bool = AS_JSON) -> None:
    """Undo a flagged match found wrong: the line is unmatched again (match it by hand next)."""
    body = _request("POST", f"/bank/lines/{quote(transaction_id, safe='')}/unmatch", api_key,
                    json={"note": note})
    _show(body, as_json)


def _show(body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        _print_decision(body)


def register(app: typer.Typer) -> None:
    app.add_typer(bank_app, name="bank")
