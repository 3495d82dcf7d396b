"""``oms republish``: after broker loss, send the event history to Kafka again."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from shared.audit.republish import Republish, republish
from shared.audit.targets import TargetError, parse_instant, service_databases
from shared.db import create_engine

console = Console()


async def _republish(urls: dict[str, str], since: str | None) -> list[Republish]:
    start = parse_instant(since, "--since")
    done: list[Republish] = []
    for service, url in urls.items():
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                done.append(await republish(conn, service, start))
        finally:
            await engine.dispose()
    return done


def command(service: str = typer.Option("all", help="a service or all"),
            since: str | None = typer.Option(
                None, "--since", help="republish from the first event occurred at/after this "
                                      "ISO 8601 instant (default: the whole history)")) -> None:
    """Reset each relay's checkpoint so the running services publish their history again
    (consumers dedupe by event id, so nothing is counted twice)."""
    try:
        done = asyncio.run(_republish(service_databases(service), since))
    except TargetError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    except (DBAPIError, OSError) as error:
        console.print(f"[red]cannot reach a service database: {error}[/red]")
        raise typer.Exit(2) from None
    table = Table(title="republish")
    for column in ("service", "checkpoint before", "checkpoint now", "events to republish"):
        table.add_column(column)
    for item in done:
        table.add_row(item.relay, f"{item.before.tx_id}/{item.before.position}",
                      f"{item.checkpoint.tx_id}/{item.checkpoint.position}", str(item.events))
    console.print(table)
    console.print(f"{sum(d.events for d in done)} events will be republished by the running "
                  "relays (at once when `oms run` is up, else at its next start)", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("republish")(command)
