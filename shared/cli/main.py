"""``oms``: the operator's command line (typer + rich); each command group in its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Event-sourced order-management system: operator commands.",
                  no_args_is_help=True, add_completion=False)



@app.callback()
def main() -> None:
    """Event-sourced order-management system: operator commands."""


# Each module exposes register(app: typer.Typer) -> None.
COMMAND_MODULES: tuple[str, ...] = (
    "shared.cli.run",
    "shared.cli.stock",
    "shared.cli.demo",
    "shared.cli.rules",
    "shared.cli.catalog",
    "shared.cli.billing",
    "shared.cli.reconcile",
    "shared.cli.notify",
    "shared.cli.bank",
    "shared.cli.audit",
    "shared.cli.republish",
    "shared.cli.replay",
    "shared.cli.replays",
    "shared.cli.dlq",
    "shared.cli.bench",
)

for _module in COMMAND_MODULES:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as error:  # a command group still being written
        if error.name != _module:
            raise


if __name__ == "__main__":
    app()
