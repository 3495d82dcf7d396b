"""``oms audit``: tamper check, time travel and export of the event stores, for auditors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.table import Table

from shared.audit.export import export_events, render
from shared.audit.history import order_history
from shared.audit.stored import audit_databases
from shared.audit.targets import TargetError, parse_instant
from shared.audit.trail import OrderTrail, order_trail
from shared.audit.verify import verify_stores
from shared.cli.tables import print_table
from shared.db import create_engine

console = Console()
audit_app = typer.Typer(help="Audit the event stores: verify, history (time travel), trail, "
                             "export.",
                        no_args_is_help=True)


@contextmanager
def operator_errors() -> Iterator[None]:
    try:
        yield
    except TargetError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


# The one --data-dir of the commands that read the stores (audit, replay, replays): stored.py.
DATA_DIR = typer.Option(None, "--data-dir", help="read this data directory's PostgreSQL, whatever "
                        "else is configured: attached to while its `oms run` runs, else started "
                        "for the command alone (without it: the configured or running databases, "
                        "else OMS_DATA_DIR's)")


def data_dir_note(text: str) -> None:
    """What ``--data-dir`` did (the server started or attached to), on stderr: stdout is the
    answer (an export, JSON) and stays parseable. Shared with ``oms replay`` and ``oms replays``."""
    Console(stderr=True).print(f"[dim]{text}[/dim]", highlight=False)


@audit_app.command("verify")
def verify(service: str = typer.Option("all", help="order|inventory|billing|notify|reconcile|all"),
           as_json: bool = typer.Option(False, "--json"),
           data_dir: Path | None = DATA_DIR) -> None:
    """Recompute every stream's hash chain and check the global order; exit 1 on the first break."""
    with operator_errors(), audit_databases(service, data_dir, data_dir_note) as urls:
        results = asyncio.run(verify_stores(urls))
    broken = False
    document: dict[str, Any] = {}
    table = Table(title="event store verification")
    for column in ("service", "events", "streams", "verdict"):
        table.add_column(column)
    for name, result in results.items():
        if isinstance(result, str):
            broken = True
            document[name] = {"error": result}
            table.add_row(name, "-", "-", f"[red]{result}[/red]")
            continue
        finding = result.finding
        broken = broken or finding is not None
        document[name] = {"events": result.events, "streams": result.streams,
                          "intact": finding is None,
                          "finding": finding.as_dict() if finding else None}
        verdict = "[green]intact[/green]" if finding is None else f"[red]BROKEN[/red] {finding.describe()}"
        table.add_row(name, str(result.events), str(result.streams), verdict)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        console.print(table)
        for name, result in results.items():
            if not isinstance(result, str) and result.finding is not None:
                console.print(f"[red]{name}: first broken event: {result.finding.describe()}[/red]",
                              highlight=False)
    if broken:
        raise typer.Exit(1)


async def _history(url: str, order_id: str, as_of_text: str | None) -> Any:
    as_of = parse_instant(as_of_text, "--as-of")
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await order_history(conn, order_id, as_of)
    finally:
        await engine.dispose()


@audit_app.command("history")
def history(order_id: str = typer.Argument(..., help="the order id"),
            as_of: str | None = typer.Option(None, "--as-of",
                                             help="ISO 8601 instant (UTC when no offset)"),
            as_json: bool = typer.Option(False, "--json"),
            data_dir: Path | None = DATA_DIR) -> None:
    """The order's status and timeline as they were at --as-of (default: now), from its log."""
    with operator_errors(), audit_databases("order", data_dir, data_dir_note) as urls:
        found, exists = asyncio.run(_history(urls["order"], order_id, as_of))
    if not exists:
        console.print(f"[yellow]no events for order {order_id}[/yellow]")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2, ensure_ascii=False, default=str))
        return
    moment = found.as_of.isoformat() if found.as_of else "now"
    console.print(f"[bold]{order_id}[/bold] as of {moment}: [bold]{found.status}[/bold] "
                  f"(version {found.version})", highlight=False)
    for key, value in found.facts.items():
        console.print(f"  {key}: {value}", highlight=False)
    table = Table(title="timeline")
    for column in ("v", "occurred at", "event", "actor", "status", "details"):
        table.add_column(column)
    for entry in found.timeline:
        table.add_row(str(entry.stream_version), entry.occurred_at.isoformat(), entry.event_type,
                      entry.actor, entry.status, entry.summary)
    print_table(console, table, key=3)


async def _trail(urls: dict[str, str], order_id: str, as_of_text: str | None) -> OrderTrail:
    as_of = parse_instant(as_of_text, "--as-of")
    engines = {service: create_engine(url, pool_size=1) for service, url in urls.items()}
    try:
        connections = {service: await engine.connect() for service, engine in engines.items()}
        try:
            return await order_trail(connections, order_id, as_of)
        finally:
            for conn in connections.values():
                await conn.close()
    finally:
        for engine in engines.values():
            await engine.dispose()


@audit_app.command("trail")
def trail(order_id: str = typer.Argument(..., help="the order id"),
          as_of: str | None = typer.Option(None, "--as-of",
                                           help="ISO 8601 instant (UTC when no offset)"),
          as_json: bool = typer.Option(False, "--json"),
          data_dir: Path | None = DATA_DIR) -> None:
    """What every service recorded about the order, in order, with who and why.

    Each event with its actor and its cause; the hash chains of the streams shown are recomputed
    (exit 1 if one does not hold)."""
    with operator_errors(), audit_databases("all", data_dir, data_dir_note) as urls:
        found = asyncio.run(_trail(urls, order_id, as_of))
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2, ensure_ascii=False, default=str))
    elif found.entries:
        moment = found.as_of.isoformat() if found.as_of else "now"
        table = Table(title=f"{order_id} through the services' logs, as of {moment}")
        for column in ("occurred at", "service", "event", "actor", "caused by", "details"):
            table.add_column(column, overflow="fold")
        for entry in found.entries:
            table.add_row(entry.occurred_at.isoformat(), entry.service,
                          entry.event.envelope.event_type, entry.actor(), entry.caused_by,
                          entry.details())
        print_table(console, table, key=2)
        verdict = ("[green]intact[/green]" if not found.breaks
                   else "[red]BROKEN[/red]: " + "; ".join(b.describe() for b in found.breaks))
        console.print(f"{len(found.entries)} event(s); the hash chains of the {found.streams} "
                      f"stream(s) they are on: {verdict}", highlight=False)
    if not found.entries:
        console.print(f"[yellow]no service recorded anything about order {order_id}[/yellow]")
        raise typer.Exit(1)
    if found.breaks:
        raise typer.Exit(1)


async def _export(urls: dict[str, str], since: str | None, until: str | None, fmt: str,
                  out: IO[str]) -> int:
    start, end = parse_instant(since, "--since"), parse_instant(until, "--until")
    count = 0
    first = True
    for service, url in urls.items():
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                batch: list[dict[str, Any]] = []
                async for event in export_events(conn, service, start, end):
                    batch.append(event)
                    if len(batch) >= 1000:
                        count += _write(batch, fmt, out, header=first)
                        first, batch = False, []
                count += _write(batch, fmt, out, header=first)
                first = False
        finally:
            await engine.dispose()
    return count


def _write(batch: list[dict[str, Any]], fmt: str, out: IO[str], *, header: bool) -> int:
    lines = list(render(batch, fmt))
    if fmt == "csv" and not header:
        lines = lines[1:]
    out.writelines(lines)
    return len(batch)


@audit_app.command("export")
def export(since: str | None = typer.Option(None, "--since", help="occurred_at >= (ISO 8601)"),
           until: str | None = typer.Option(None, "--until", help="occurred_at < (ISO 8601)"),
           fmt: str = typer.Option("jsonl", "--format", help="jsonl|csv"),
           service: str = typer.Option("all", help="a service or all"),
           output: Path | None = typer.Option(None, "--output", "-o", help="file (default stdout)"),
           data_dir: Path | None = DATA_DIR) -> None:
    """Events with their hashes and previous hashes; re-verify with shared/audit/verify_export.py."""
    if fmt not in ("jsonl", "csv"):
        console.print(f"[red]--format: {fmt!r} is not jsonl or csv[/red]")
        raise typer.Exit(2)
    with operator_errors(), audit_databases(service, data_dir, data_dir_note) as urls:
        if output is None:
            count = asyncio.run(_export(urls, since, until, fmt, sys.stdout))
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = asyncio.run(_export(urls, since, until, fmt, handle))
    Console(stderr=True).print(f"{count} events exported", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
