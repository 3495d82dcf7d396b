"""``oms status``: is every service (each instance) up, is any behind, has anything piled up."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.cli.tables import print_table
from shared.runtime.plan import parse_services
from shared.runtime.status import StatusReport, gather


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    services: Annotated[str | None, typer.Option(
        "--services", help="Comma-separated subset, e.g. order,inventory [default: all five]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document (for scripts).")] = False,
) -> None:
    """Each service's instances (up, pid, messages consumed), how far its consumer group is behind
    on the broker, its events not yet published and its dead letters not yet re-driven. Exit 1
    when an instance is down or a part cannot be read (named), else 0."""
    console = Console()
    try:
        chosen = parse_services(services)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--services") from None
    found = gather(chosen)
    if as_json:
        print(json.dumps(found.as_json(), indent=1))
    else:
        show(console, found)
    raise typer.Exit(0 if found.healthy else 1)


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def show(console: Console, found: StatusReport) -> None:
    reports = found.services
    table = Table(title="OMS status")
    for column in ("service", "up", "behind (msgs)", "consumers", "unpublished", "dead letters"):
        table.add_column(column, justify="left" if column in ("service", "up") else "right")
    for r in reports:
        up = sum(i.up for i in r.instances)
        mark = "green" if up == len(r.instances) else "red"
        table.add_row(r.name, f"[{mark}]{up}/{len(r.instances)}[/{mark}]", _count(r.lag),
                      _count(r.members), _count(r.unpublished), _count(r.dead_letters))
    print_table(console, table)
    instances = Table(title="instances")
    for column in ("instance", "URL", "health", "pid", "consumed"):
        instances.add_column(column, justify="right" if column in ("pid", "consumed") else "left")
    for r in reports:
        for i in r.instances:
            health = "[green]ok[/green]" if i.up else f"[red]down[/red] {i.problem}".rstrip()
            instances.add_row(i.name, i.url, health, str(i.pid or "-"), _count(i.consumed))
    print_table(console, instances)
    for r in reports:
        for problem in r.problems:
            console.print(f"[red]{r.name}:[/red] {problem}", highlight=False)
    for problem in found.problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
