"""``oms dlq``: list the messages a service could not handle, and send them through again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from shared.cli.tables import print_indented
from shared.db import libpq_url
from shared.kafka import OutgoingRecord, Publisher
from shared.runtime.endpoints import database_url, recorded_kafka_bootstrap
from shared.settings import SERVICES, OmsSettings

console = Console()
dlq_app = typer.Typer(help="Dead letters: messages a service could not handle (per service database).",
                      no_args_is_help=True)

SERVICE_OPTION = typer.Option(None, "--service", "-s", help="one service; every service when omitted")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    service: str
    id: int
    message_id: str
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    error: str
    failed_at: Any
    redriven_at: Any


COLUMNS = ('id, message_id, consumer, topic, partition, "offset", key, value, error, failed_at, '
           "redriven_at")


def _services(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICES)
    if service not in SERVICES:
        console.print(f"[red]--service: unknown service {service!r} (one of {', '.join(SERVICES)})[/red]")
        raise typer.Exit(2)
    return [service]


def _database(service: str) -> str:
    url = database_url(service)
    if url is None:
        console.print(f"[red]no database known for {service}: is `oms run` running? "
                      f"(or set OMS_{service.upper()}_DATABASE_URL)[/red]")
        raise typer.Exit(2)
    return libpq_url(url)


def _bootstrap() -> tuple[str, bool]:
    """The broker, and whether to produce to it idempotently: the embedded Tansu `oms run`
    recorded refuses idempotent producers; any other broker (OMS_KAFKA_BOOTSTRAP) gets the
    settings' choice (OMS_KAFKA_IDEMPOTENCE, on by default: Apache Kafka)."""
    settings = OmsSettings()
    recorded = recorded_kafka_bootstrap(settings)
    bootstrap = settings.kafka_bootstrap or recorded
    if not bootstrap:
        console.print("[red]no broker known: is `oms run` running? (or set OMS_KAFKA_BOOTSTRAP)[/red]")
        raise typer.Exit(2)
    if settings.kafka_idempotence is not None:
        return bootstrap, settings.kafka_idempotence
    return bootstrap, bootstrap != recorded


def read_dead_letters(service: str, *, ids: Sequence[int] | None = None,
                      pending_only: bool = False) -> list[DeadLetter]:
    where, params = ["TRUE"], {}
    if ids is not None:
        where.append("id = ANY(%(ids)s)")
        params["ids"] = list(ids)
    if pending_only:
        where.append("redriven_at IS NULL")
    sql = f"SELECT {COLUMNS} FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id"
    with psycopg.connect(_database(service)) as conn:
        rows = conn.execute(sql.encode(), params).fetchall()
    return [DeadLetter(service, row[0], str(row[1]), row[2], row[3], row[4], row[5], row[6],
                       bytes(row[7]), row[8], row[9], row[10]) for row in rows]


def redrive_letters(letters: Sequence[DeadLetter], bootstrap: str, *, idempotent: bool = True
                    ) -> int:
    """Send each letter's original bytes to its original topic with its original key.

    The consumer recorded the message id in its inbox when it dead-lettered it; that record is
    removed first (else the redriven copy would be skipped as a duplicate). Other consumers of the
    topic still hold the id and skip it. A message still bad is dead-lettered again.
    """
    if not letters:
        return 0
    for service in {letter.service for letter in letters}:
        mine = [letter for letter in letters if letter.service == service]
        with psycopg.connect(_database(service)) as conn:
            conn.execute("DELETE FROM inbox WHERE message_id = ANY(%(ids)s::uuid[]) "
                         "AND consumer = ANY(%(consumers)s)",
                         {"ids": [letter.message_id for letter in mine],
                          "consumers": list({letter.consumer for letter in mine})})
    asyncio.run(_publish(bootstrap, idempotent, [
        OutgoingRecord(topic=letter.topic, key=letter.key, value=letter.value,
                       headers={"oms-redrive": f"{letter.service}:{letter.id}"})
        for letter in letters]))
    for service in {letter.service for letter in letters}:
        with psycopg.connect(_database(service)) as conn:
            conn.execute("UPDATE dead_letters SET redriven_at = now() WHERE id = ANY(%(ids)s)",
                         {"ids": [letter.id for letter in letters if letter.service == service]})
    return len(letters)


async def _publish(bootstrap: str, idempotent: bool, records: list[OutgoingRecord]) -> None:
    publisher = Publisher(bootstrap, idempotent=idempotent)
    await publisher.start()
    try:
        await publisher.publish(records)
    finally:
        await publisher.stop()


@dlq_app.command("list")
def list_(service: str | None = SERVICE_OPTION,
          as_json: bool = typer.Option(False, "--json", help="one JSON object per line")) -> None:
    """Every dead letter: service, id, topic, partition/offset, key, error, failed / redriven at."""
    letters = [letter for name in _services(service) for letter in read_dead_letters(name)]
    if as_json:
        for x in letters:
            typer.echo(json.dumps({
                "service": x.service, "id": x.id, "message_id": x.message_id, "topic": x.topic,
                "partition": x.partition, "offset": x.offset, "key": x.key, "error": x.error,
                "failed_at": str(x.failed_at),
                "redriven_at": None if x.redriven_at is None else str(x.redriven_at),
                "value": x.value.decode("utf-8", errors="replace")}, ensure_ascii=False))
        return
    if not letters:
        console.print("no dead letters")
        return
    show_letters(console, letters)
    console.print(f"{len(letters)} dead letter(s)")


WIDE = 120  # narrower terminals get one block per letter: a table's error column would be too thin


def _when(instant: Any) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S") if hasattr(instant, "strftime") else str(instant)


def show_letters(out: Console, letters: Sequence[DeadLetter]) -> None:
    """A table on a wide terminal; else each letter as a heading line and its error beneath,
    wrapped at the terminal's width (an 80-column terminal squeezed the table's error column
    into a few characters a line)."""
    if out.width >= WIDE:
        table = Table("service", "id", "topic", "at", "key", "error", "failed at", "redriven at")
        for x in letters:
            table.add_row(x.service, str(x.id), x.topic, f"{x.partition}/{x.offset}", x.key or "",
                          x.error[:300], _when(x.failed_at),
                          "" if x.redriven_at is None else _when(x.redriven_at))
        out.print(table)
        return
    for x in letters:
        state = "pending" if x.redriven_at is None else f"redriven {_when(x.redriven_at)}"
        out.print(f"[bold]{x.service} #{x.id}[/bold]  {x.topic} {x.partition}/{x.offset}  "
                  f"key {x.key or '-'}", highlight=False)
        print_indented(out, f"failed {_when(x.failed_at)}, {state}")
        print_indented(out, x.error[:600])


@dlq_app.command("redrive")
def redrive(letter_id: int | None = typer.Argument(None, metavar="ID", help="a dead letter's id"),
            all_: bool = typer.Option(False, "--all", help="every dead letter not redriven yet"),
            service: str | None = SERVICE_OPTION) -> None:
    """Publish dead letters again to their original topic (original bytes and key)."""
    if (letter_id is None) == (not all_):
        console.print("[red]give one dead letter ID, or --all[/red]")
        raise typer.Exit(2)
    if letter_id is not None and service is None:
        console.print("[red]--service: dead letter ids are per service; name the service[/red]")
        raise typer.Exit(2)
    names = _services(service)
    if letter_id is not None:
        letters = read_dead_letters(names[0], ids=[letter_id])
        if not letters:
            console.print(f"[red]no dead letter {letter_id} in {names[0]}[/red]")
            raise typer.Exit(1)
    else:
        letters = [x for name in names for x in read_dead_letters(name, pending_only=True)]
    bootstrap, idempotent = _bootstrap()
    count = redrive_letters(letters, bootstrap, idempotent=idempotent)
    console.print(f"redriven {count} dead letter(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
