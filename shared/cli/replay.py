"""``oms replay SERVICE``: rebuild a service's projections from the history, compare, swap on request."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from shared.audit.replay import ReplayError, ReplayRun, replay_service
from shared.audit.swap import SwapRefused, TableComparison, compare, other_sessions, swap
from shared.audit.targets import TargetError, service_databases
from shared.db import database_name
from shared.settings import SERVICES

console = Console()


async def _refuse_if_running(service: str, live_url: str) -> None:
    name = database_name(live_url)
    busy = await other_sessions(live_url, name)
    if busy:
        raise SwapRefused(f"{service} looks running ({busy[name]} session(s) on {name}): stop it "
                          "(and `oms run`) before --swap")


async def _replay(service: str, do_swap: bool, progress: Progress
                  ) -> tuple[str, ReplayRun, list[TableComparison]]:
    urls = service_databases("all")
    if service not in urls:
        raise TargetError(f"no database for {service}")
    if do_swap:  # before the work, not only after it
        await _refuse_if_running(service, urls[service])
    task = progress.add_task(f"replaying {service}", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    # A replay to swap in stops where the live database stands (the events its inbox holds).
    run = await replay_service(service, urls[service], urls, advance, handled_only=do_swap)
    progress.stop()
    return urls[service], run, await compare(urls[service], run.database_url)


def command(service: str = typer.Argument(..., help=" | ".join(SERVICES)),
            do_swap: bool = typer.Option(False, "--swap", help="make the replay the live database "
                                         "(only while the service is stopped; the replay then "
                                         "stops where the live database stands)")) -> None:
    """Rebuild SERVICE's projections from the event history into a fresh database, compare
    checksums with the live one, and swap only when asked. Replays never send notifications."""
    if service not in SERVICES:
        console.print(f"[red]unknown service {service!r}: choose one of {', '.join(SERVICES)}[/red]")
        raise typer.Exit(2)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    try:
        with progress:
            live_url, run, comparison = asyncio.run(_replay(service, do_swap, progress))
    except (TargetError, ReplayError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    except (DBAPIError, OSError) as error:
        console.print(f"[red]cannot reach a service database: {error}[/red]")
        raise typer.Exit(2) from None
    except SwapRefused as error:
        console.print(f"[red]swap refused: {error}[/red]")
        raise typer.Exit(3) from None
    console.print(f"{run.fed} events fed, {run.commands} own commands re-run, "
                  f"{run.dead_letters} dead letters, into {run.database}", highlight=False)
    if run.left_out:
        console.print(f"{run.left_out} newer events the live service has not handled yet were "
                      "left out: it handles them when it runs again", highlight=False)
    for refused in run.refused:
        console.print(f"[yellow]own command failed when re-run: {refused}[/yellow]", highlight=False)
    table = Table(title=f"{service}: live vs replay")
    table.add_column("table", no_wrap=True)
    for column in ("live rows", "replay rows", "live sha256", "replay sha256", ""):
        table.add_column(column)
    for item in comparison:
        live, replay = item.live, item.replay
        table.add_row(item.table, str(live.rows) if live else "-", str(replay.rows) if replay else "-",
                      live.digest[:10] if live else "-", replay.digest[:10] if replay else "-",
                      "[green]same[/green]" if item.matches else "[red]differs[/red]")
    console.print(table)
    same = all(item.matches for item in comparison)
    console.print("[green]the replay matches the live projections[/green]" if same
                  else "[yellow]the replay differs from the live projections[/yellow]")
    if do_swap:
        try:
            before = asyncio.run(swap(live_url, run.database_url, service, run.number))
        except SwapRefused as error:
            console.print(f"[red]swap refused: {error}[/red]")
            raise typer.Exit(3) from None
        console.print(f"swapped: the replay is live; the old database is kept as {before}",
                      highlight=False)
    else:
        console.print(f"nothing swapped; `oms replay {service} --swap` with the service stopped "
                      f"makes a new replay live ({run.database} is kept for inspection)",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.command("replay")(command)
