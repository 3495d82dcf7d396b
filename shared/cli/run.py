"""``oms run``: start everything (embedded unless configured), show where it is, serve until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.auth import keys_file, load_api_keys
from shared.cli.tables import print_table
from shared.logging import configure_logging
from shared.runtime.datadir import DataDirInUse
from shared.runtime.plan import command_from_template, parse_scale, parse_services
from shared.runtime.supervisor import Runtime, RuntimeInfo, RuntimeStartError
from shared.settings import OmsSettings


class _ShutdownRequested(BaseException):
    """Raised in the main thread by the first Ctrl-C / SIGTERM while the runtime is starting."""


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Where the embedded PostgreSQL data and logs live [default: OMS_DATA_DIR or .oms]",
    )] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Wipe the data directory first (all embedded data is lost).",
    )] = False,
    services: Annotated[str | None, typer.Option(
        "--services", help="Comma-separated subset to run, e.g. order,inventory [default: all five]",
    )] = None,
    scale: Annotated[str | None, typer.Option(
        "--scale", envvar="OMS_SCALE",
        help="Instances per service, e.g. order=2,inventory=2 (one consumer group: the topics' "
             "partitions are shared out; the extra instances on free ports, logging to "
             "<data-dir>/logs/<service>-<n>.log) [default: one of each]",
    )] = None,
    free_ports: Annotated[bool, typer.Option(
        "--free-ports", help="Pick free HTTP ports instead of the defaults 8101-8105.",
    )] = False,
    echo: Annotated[bool, typer.Option(
        "--echo", help="Also print the services' logs here (they always go to <data-dir>/logs).",
    )] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds to wait for every service to answer /health.",
    )] = 120.0,
    service_command: Annotated[str | None, typer.Option(
        "--service-command", hidden=True,
        help="Child command template with {name} and {python} (tests, profiling).",
    )] = None,
) -> None:
    """Start PostgreSQL, the broker and the five services; supervise them until Ctrl-C."""
    settings = OmsSettings()
    console = Console()
    try:
        chosen = parse_services(services)
        runtime = Runtime(
            data_dir=data_dir, services=chosen, auto_ports=free_ports, echo=echo, fresh=fresh,
            settings=settings, scale=parse_scale(scale, chosen),
            command=command_from_template(service_command) if service_command else None,
        )
    except ValueError as error:
        console.print(f"[red]oms run:[/red] {error}")
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, settings.log_level)
    raise typer.Exit(serve(runtime, console, timeout=timeout))


def serve(runtime: Runtime, console: Console, *, timeout: float = 120.0) -> int:
    """Start ``runtime``, print where everything is, block until Ctrl-C / SIGTERM, stop it.

    Returns the process exit code: 0 after a requested stop, 1 when the start failed.
    """
    stop_requested = threading.Event()
    starting = True

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not stop_requested.is_set()
        stop_requested.set()
        if starting and first:
            raise _ShutdownRequested

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            with console.status("starting PostgreSQL, the broker and the services..."):
                info = runtime.start(timeout=timeout)
        except _ShutdownRequested:
            console.print("stopped before the start finished")
            return 0
        except (RuntimeStartError, DataDirInUse, ValueError, OSError) as error:
            console.print(f"[red]oms run: could not start:[/red] {error}")
            return 1
        starting = False
        if not stop_requested.is_set():
            print_started(console, runtime, info)
        while not stop_requested.wait(0.5):
            pass
        console.print("stopping...")
        runtime.stop()
        console.print("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def print_started(console: Console, runtime: Runtime, info: RuntimeInfo) -> None:
    health = runtime.health()
    table = Table(title="OMS services")
    table.add_column("service")
    table.add_column("URL")
    table.add_column("health")
    table.add_column("pid", justify="right")
    for name, service in info.all_instances.items():
        table.add_row(name, service.url, "[green]ok[/green]" if health.get(name) else "[red]down[/red]",
                      str(runtime.pid(name) or "-"))
    print_table(console, table)
    broker = "embedded Tansu" if info.embedded_kafka else "configured"
    console.print(f"Kafka bootstrap: {info.kafka_bootstrap} ({broker})")
    if info.embedded_postgres:
        console.print(f"PostgreSQL: embedded, data in {info.data_dir / 'pg'}")
    else:
        console.print("PostgreSQL: configured")
    console.print(f"Logs: {info.log_dir}/<service>.log")
    print_api_keys(console)
    console.print("Serving until Ctrl-C.")


def print_api_keys(console: Console) -> None:
    path = keys_file()
    try:
        keys = load_api_keys(path)
    except (OSError, ValueError) as error:
        console.print(f"[yellow]API keys: cannot read {path}: {error}[/yellow]")
        return
    table = Table(title=f"API keys (X-API-Key header) from {path}")
    table.add_column("key")
    table.add_column("user")
    table.add_column("role")
    for key, principal in keys.items():
        table.add_row(key, principal.user, principal.role)
    print_table(console, table)


if __name__ == "__main__":  # ``python -m shared.cli.run``: the same command without the oms group
    typer.run(run)
