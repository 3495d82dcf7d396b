"""``oms replay SERVICE...``: rebuild a service's projections from the history, compare, swap on request."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from shared import gctune
from shared.audit.replay import ReplayError, ReplayRun
from shared.audit.replay_many import REPLAYABLE, replay_and_compare, replay_many
from shared.audit.stored import audit_databases
from shared.audit.swap import SwapRefused, TableComparison, other_sessions, swap
from shared.audit.targets import TargetError
from shared.audit.verify import verify_stores
from shared.cli.audit import DATA_DIR, data_dir_note
from shared.db import database_name
from shared.settings import SERVICES, OmsSettings

console = Console()


async def _refuse_if_running(service: str, live_url: str) -> None:
    name = database_name(live_url)
    busy = await other_sessions(live_url, name)
    if busy:
        raise SwapRefused(f"{service} looks running ({busy[name]} session(s) on {name}): stop it "
                          "(and `oms run`) before --swap")


async def _refuse_if_tampered(urls: dict[str, str]) -> None:
    """A swap installs projections built from the stored history: not from a history edited
    behind the system's back (every hash chain and the global order, as `oms audit verify`)."""
    for service, verdict in (await verify_stores(urls)).items():
        if isinstance(verdict, str):
            raise TargetError(f"{service}: {verdict}")
        if verdict.finding is not None:
            raise SwapRefused(
                f"{service}'s event store fails verification: {verdict.finding.describe()}. A "
                "replay would build projections from it; `oms audit verify` names every store "
                "that fails. Nothing was created")


def _live_databases(services: list[str], do_swap: bool, urls: dict[str, str]) -> dict[str, str]:
    """Every service's database (``urls``); refused when one of ``services`` has none, or (to
    swap) while one of them looks running or any event store fails verification: before the
    work, not only after it."""
    missing = [s for s in services if s not in urls]
    if missing:
        raise TargetError(f"no database for {', '.join(missing)}")
    if do_swap:
        for service in services:
            asyncio.run(_refuse_if_running(service, urls[service]))
        with console.status("verifying every event store before a swap (oms audit verify)..."):
            asyncio.run(_refuse_if_tampered(urls))
    return urls


Done = tuple[str, str, ReplayRun, list[TableComparison]]  # service, live url, run, comparison


def _replay(service: str, do_swap: bool, progress: Progress, found: dict[str, str]) -> Done:
    urls = _live_databases([service], do_swap, found)
    task = progress.add_task(f"replaying {service}", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    gctune.tune(OmsSettings().gc_threshold)  # a long run of batches, as a service is
    # A replay to swap in stops where the live database stands (the events its inbox holds).
    with progress:
        done = asyncio.run(replay_and_compare(service, urls, do_swap, advance))
    return service, urls[service], done.run, done.comparison


def command(services: list[str] = typer.Argument(..., metavar="SERVICE...",
                                                help=" | ".join(SERVICES) + " | all"),
            do_swap: bool = typer.Option(False, "--swap", help="make the replay the live database "
                                         "(only while the service is stopped; the replay then "
                                         "stops where the live database stands)"),
            data_dir: Path | None = DATA_DIR) -> None:
    """Rebuild SERVICE's projections from the event history into a fresh database, compare
    checksums with the live one, and swap only when asked. Replays never send notifications.

    Several services (or ``all``: inventory, billing, notify, reconcile) are replayed side by
    side, each in a process of its own. Without --swap, exit 1 when a replay differs from live
    (every event store is then verified: one edited behind the system's back is named)."""
    chosen = list(dict.fromkeys(s for name in services
                                for s in (REPLAYABLE if name == "all" else (name,))))
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        console.print(f"[red]unknown service {unknown[0]!r}: choose from {', '.join(SERVICES)} "
                      "or all[/red]")
        raise typer.Exit(2)
    never = [s for s in chosen if s not in REPLAYABLE]
    if len(chosen) > 1 and never:  # alone, it is refused with the reason and nothing is created
        console.print(f"[red]{never[0]} cannot be replayed (`oms replay {never[0]}` says why); "
                      f"several at once: choose from {', '.join(REPLAYABLE)} or all. Nothing was "
                      "created.[/red]")
        raise typer.Exit(2)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    with contextlib.ExitStack() as server:  # a data directory's PostgreSQL runs until the end
        _replay_and_report(chosen, do_swap, progress, server, data_dir)


def _replay_and_report(chosen: list[str], do_swap: bool, progress: Progress,
                       server: contextlib.ExitStack, data_dir: Path | None) -> None:
    try:
        found = server.enter_context(audit_databases("all", data_dir, data_dir_note))
        done = ([_replay(chosen[0], do_swap, progress, found)] if len(chosen) == 1
                else _replay_side_by_side(chosen, do_swap, progress, found))
    except (TargetError, ReplayError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    except (DBAPIError, OSError) as error:
        console.print(f"[red]cannot reach a service database: {error}[/red]")
        raise typer.Exit(2) from None
    except SwapRefused as error:
        console.print(f"[red]swap refused: {error}[/red]")
        raise typer.Exit(3) from None
    for service, live_url, run, comparison in done:
        _report(service, run, comparison)
        if do_swap:
            try:
                before = asyncio.run(swap(live_url, run.database_url, service, run.number))
            except SwapRefused as error:
                console.print(f"[red]swap refused: {error}[/red]")
                raise typer.Exit(3) from None
            console.print(f"swapped: the replay is live; the old database is kept as {before}",
                          highlight=False)
        else:
            console.print(f"nothing swapped; `oms replay {service} --swap` with the service "
                          f"stopped makes a new replay live ({run.database} is kept for "
                          "inspection; `oms replays prune` drops older ones)", highlight=False)
    differing = [service for service, _, _, comparison in done
                 if not all(item.matches for item in comparison)]
    if differing and not do_swap:  # a swap installs the difference: it is what was asked for
        _explain_difference(found)
        raise typer.Exit(1)


def _explain_difference(urls: dict[str, str]) -> None:
    """A replay reads the event stores as they are now: one edited behind the system's back (a
    payment's amount, say) makes the rebuilt projection differ from live, which was built from
    the events as they were sent. Name such a store, so the difference is not taken for a fault
    of the projection; with every store intact, say what else it can be."""
    with console.status("the replay differs: verifying the event stores it was built from..."):
        verdicts = asyncio.run(verify_stores(urls))
    broken: dict[str, str] = {}
    for service, verdict in verdicts.items():
        if isinstance(verdict, str):
            broken[service] = verdict
        elif verdict.finding is not None:
            broken[service] = verdict.finding.describe()
    for service, why in broken.items():
        console.print(f"[red]{service}'s event store fails verification: {why}[/red]",
                      highlight=False, soft_wrap=True)
    if broken:
        console.print("the replay read the history as it is stored now, so the difference may "
                      "come from an event edited after it was sent (`oms audit verify`, `oms "
                      "audit trail ORDER`)", highlight=False, soft_wrap=True)
    else:
        console.print("every event store is intact (as `oms audit verify`): either the live "
                      "service had not handled the whole history yet (running and behind: `oms "
                      "status`), or its projection disagrees with the history (`oms replay "
                      "SERVICE --swap`, with the service stopped, installs the rebuilt one)",
                      highlight=False, soft_wrap=True)


def _replay_side_by_side(services: list[str], do_swap: bool, progress: Progress,
                         found: dict[str, str]) -> list[Done]:
    urls = _live_databases(services, do_swap, found)
    tasks = {s: progress.add_task(f"replaying {s}", total=None) for s in services}

    def advance(service: str, done: int, total: int) -> None:
        progress.update(tasks[service], completed=done, total=total)

    with progress:
        replayed = replay_many(services, urls, handled_only=do_swap, progress=advance)
    return [(r.service, urls[r.service], r.run, r.comparison) for r in replayed]


def _report(service: str, run: ReplayRun, comparison: list[TableComparison]) -> None:
    console.print(f"{service}: {run.fed} events fed, {run.commands} own commands re-run, "
                  f"{run.dead_letters} dead letters, into {run.database}", highlight=False,
                  soft_wrap=True)  # one line, whatever the terminal's width (scripts grep it)
    if run.left_out:
        console.print(f"{run.left_out} newer events the live service has not handled yet were "
                      "left out: it handles them when it runs again", highlight=False)
    for refused in run.refused:
        console.print(f"[yellow]own command failed when re-run: {refused}[/yellow]", highlight=False)
    for note in run.notes:
        console.print(note, highlight=False, soft_wrap=True)
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


def register(app: typer.Typer) -> None:
    app.command("replay")(command)
