"""``oms replays``: the databases ``oms replay`` kept, listed, and the older ones dropped."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from psycopg import Error as DatabaseError
from rich.console import Console
from rich.table import Table

from shared.audit.prune import KeptDatabase, kept_databases, prune, to_prune
from shared.audit.stored import audit_databases
from shared.audit.targets import TargetError
from shared.cli.audit import DATA_DIR, data_dir_note
from shared.db import database_name
from shared.settings import SERVICES, with_database

console = Console()
replays_app = typer.Typer(help="The databases `oms replay` kept (replays, and live databases "
                          "a swap replaced): list them, drop the older ones.",
                          no_args_is_help=True)

SERVICE_OPTION = typer.Option("all", "--service", "-s", help="|".join((*SERVICES, "all")))


@contextmanager
def _databases(data_dir: Path | None) -> Iterator[dict[str, str]]:
    """Every service's database (a stopped `oms run`'s data directory's server started for the
    command when nothing runs)."""
    try:
        with audit_databases("all", data_dir, data_dir_note) as urls:
            yield urls
    except TargetError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


def _found(service: str, every: dict[str, str]) -> tuple[dict[str, list[KeptDatabase]], set[str]]:
    """server URL -> the kept databases on it, and the names of every live database (another
    service's live database is never dropped either)."""
    if service != "all" and service not in SERVICES:
        console.print(f"[red]unknown service {service!r}: choose one of {', '.join(SERVICES)} "
                      "or all[/red]")
        raise typer.Exit(2)
    urls = every if service == "all" else {n: u for n, u in every.items() if n == service}
    if not urls:
        console.print(f"[red]no database for {service}[/red]")
        raise typer.Exit(2)
    live = {database_name(url) for url in every.values()}
    servers: dict[str, set[str]] = defaultdict(set)
    for name, url in urls.items():
        servers[with_database(url, "postgres")].add(name)
    try:
        return {server: asyncio.run(kept_databases(server, names))
                for server, names in servers.items()}, live
    except (DatabaseError, OSError) as error:
        console.print(f"[red]cannot reach a service database: {error}[/red]")
        raise typer.Exit(2) from None


def _size(count: int) -> str:
    amount = float(count)
    for unit in ("B", "kB", "MB"):
        if amount < 1024:
            return f"{amount:.0f} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def _table(databases: list[KeptDatabase], title: str) -> Table:
    table = Table("service", title=title)
    table.add_column("database", no_wrap=True)  # whole: it is what an operator types next
    for column in ("kind", "size", "sessions"):
        table.add_column(column)
    for d in databases:
        table.add_row(d.service, d.name, "replay" if d.kind == "replay" else "pre-swap",
                      _size(d.size), str(d.sessions))
    return table


@replays_app.command("list")
def list_(service: str = SERVICE_OPTION, data_dir: Path | None = DATA_DIR) -> None:
    """Every replay database and every live database a swap replaced (pre-swap), with its size
    and the sessions open on it."""
    with _databases(data_dir) as every:
        _list(service, every)


def _list(service: str, every: dict[str, str]) -> None:
    servers, _ = _found(service, every)
    kept = [d for databases in servers.values() for d in databases]
    if not kept:
        console.print("no replay databases")
        return
    console.print(_table(kept, "kept by oms replay"))
    console.print(f"{len(kept)} database(s), {_size(sum(d.size for d in kept))}", highlight=False)


@replays_app.command("prune")
def prune_(service: str = SERVICE_OPTION,
           keep: int = typer.Option(1, "--keep", min=0, help="the newest replays (and pre-swap "
                                    "databases) of each service to keep"),
           dry_run: bool = typer.Option(False, "--dry-run", help="show what would be dropped"),
           data_dir: Path | None = DATA_DIR) -> None:
    """Drop all but the newest KEEP replay databases (and pre-swap databases) of each service.
    A live database, or one with a session open on it (a replay still running), is never
    dropped."""
    with _databases(data_dir) as every:
        _prune(service, keep, dry_run, every)


def _prune(service: str, keep: int, dry_run: bool, every: dict[str, str]) -> None:
    servers, live = _found(service, every)
    dropped = 0
    freed = 0
    for server, kept in servers.items():
        drop, spared = to_prune(kept, keep, live)
        for d in spared:
            why = "it is live" if d.name in live else f"{d.sessions} session(s) on it"
            console.print(f"kept {d.name}: {why}", highlight=False)
        if not drop:
            continue
        console.print(_table(drop, "would be dropped" if dry_run else "dropped"))
        if not dry_run:
            try:
                prune(server, drop)
            except (DatabaseError, OSError) as error:
                console.print(f"[red]could not drop them: {error}[/red]")
                raise typer.Exit(1) from None
        dropped += len(drop)
        freed += sum(d.size for d in drop)
    if not dropped:
        console.print(f"nothing to drop (keeping the newest {keep} of each)", highlight=False)
    else:
        verb = "would drop" if dry_run else "dropped"
        console.print(f"{verb} {dropped} database(s), {_size(freed)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(replays_app, name="replays")
