"""``oms``: the operator's command line (typer + rich); each command group in its own module."""

from __future__ import annotations

import importlib

import structlog
import typer

app = typer.Typer(help="Event-sourced order-management system: operator commands.",
                  no_args_is_help=True, add_completion=False)



# These set up logging themselves (a run's services log at OMS_LOG_LEVEL).
_OWN_LOGGING = frozenset({"run", "demo", "bench"})


@app.callback()
def main(ctx: typer.Context) -> None:
    """Event-sourced order-management system: operator commands."""
    if ctx.invoked_subcommand not in _OWN_LOGGING and not structlog.is_configured():
        # Warnings and errors only, on stderr: stdout is the command's answer (an export, JSON),
        # and structlog's default would print every info line there.
        from shared.logging import configure_logging
        from shared.settings import OmsSettings

        configure_logging(OmsSettings().log_format, "WARNING")


# Each module exposes register(app: typer.Typer) -> None.
COMMAND_MODULES: tuple[str, ...] = (
    "shared.cli.run",
    "shared.cli.status",
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
