"""``oms bench``: measure appends, batches, end-to-end orders/s, latency, replay (issue 6)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shared.bench.results import Sizes
from shared.bench.suite import BENCHES, run
from shared.cli.options import scale_option
from shared.logging import configure_logging
from shared.settings import OmsSettings

console = Console()


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (a smoke run, ~1 min).")] = False,
    only: Annotated[str | None, typer.Option(
        "--only", help=f"Run one benchmark: {', '.join(BENCHES)}.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where the JSON and markdown go.")] = Path(
        "bench-results"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON, not the table.")] = False,
    orders: Annotated[int | None, typer.Option(
        "--orders", min=1, help="Orders through bench 3 (default 600): also the history bench 5 "
        "replays, about 9 stored events per order (111,000 orders: a million events).")] = None,
    scale: Annotated[str | None, typer.Option(
        "--scale", help="Benches 3-4: instances per service, as `oms run --scale` (order=2,...)."
    )] = None,
) -> None:
    """Measure the OMS against the eventsourcing library and raw PostgreSQL, in one run."""
    if only is not None and only not in BENCHES:
        raise typer.BadParameter(f"choose from {', '.join(BENCHES)}", param_hint="--only")
    configure_logging(OmsSettings().log_format, "WARNING")
    sizes = Sizes.quick() if quick else Sizes()
    if orders is not None:
        sizes = replace(sizes, e2e_orders=orders)
    sizes = replace(sizes, scale=tuple(scale_option(scale).items()))
    report = run(sizes, only=only, quick=quick,
                 log=lambda line: console.print(line, highlight=False))
    json_path, md_path = report.write(out)
    if as_json:
        console.print_json(json.dumps(report.to_json(), default=str))
    else:
        console.print(report.to_markdown(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"written: {json_path} and {md_path}")
