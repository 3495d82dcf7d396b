"""``oms notify``: check a notification rules file and show what its templates may use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.notify.config import NotifyConfig, load_rules
from services.notify.domain import EVENTS, RulesError, allowed_fields
from shared.cli.tables import print_table

notify_app = typer.Typer(help="Notifications: check a rules file, list template fields.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")


@notify_app.command("check")
def check(
    file: Annotated[Path | None, typer.Argument(
        help="Rules file (default: OMS_NOTIFY_RULES_FILE, else deploy/notify-rules.example.toml)")] = None,
) -> None:
    """Parse a rules file (templates included) and list its rules and the channels set up here."""
    out = Console(highlight=False)
    config = NotifyConfig()
    path = file or config.notify_rules_file
    try:
        rules = load_rules(path)
    except RulesError as error:
        out.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"{path} (version {rules.version or '-'})")
    for column in ("rule", "event", "recipients", "channels", "here"):
        table.add_column(column)
    setup = config.delivery_setup()
    for rule in rules.rules:
        missing = [f"{c}: {why}" for c in rule.channels if (why := setup.unavailable(rule, c))]
        here = "; ".join(missing) + " -> inbox" if missing else "as written"
        table.add_row(rule.name, rule.event_type, ", ".join(rule.recipients),
                      ", ".join(rule.channels), escape(here))
    print_table(out, table)
    out.print(f"{len(rules.rules)} rules OK")


@notify_app.command("fields")
def fields() -> None:
    """The names each event's templates may use, for customers and for staff."""
    out = Console(highlight=False)
    table = Table(title="template fields")
    for column in ("event", "customer may use", "staff may use"):
        table.add_column(column)
    for event_type in EVENTS:
        table.add_row(event_type, ", ".join(sorted(allowed_fields(event_type, for_customer=True))),
                      ", ".join(sorted(allowed_fields(event_type, for_customer=False))))
    print_table(out, table)
