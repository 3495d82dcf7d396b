"""``oms run`` as a command: option checking and the API-key table it prints."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.testing import CliRunner

from shared.cli import run


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    run.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `run` a subcommand, as in `oms`
        """Nothing."""

    return app


def test_an_unknown_service_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(_app(), ["run", "--services", "order,shipping"])
    assert result.exit_code == 2
    assert "unknown service(s) shipping" in result.output


def test_a_bad_scale_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(_app(), ["run", "--services", "order,inventory",
                                         "--scale", "billing=2"])
    assert result.exit_code == 2
    assert "billing is not among the services run" in result.output
    result = CliRunner().invoke(_app(), ["run", "--scale", "order=20"])
    assert result.exit_code == 2 and "from 1 to 8" in " ".join(result.output.split())


def test_demo_and_bench_refuse_a_bad_scale_as_run_does() -> None:
    from shared.cli.main import app

    for command in ("demo", "bench"):
        result = CliRunner().invoke(app, [command, "--scale", "order=9"])
        words = " ".join(result.output.split())
        assert result.exit_code == 2 and "--scale" in words and "from 1 to 8" in words, words


def test_the_demo_api_keys_are_shown() -> None:
    console = Console(record=True, width=200)
    run.print_api_keys(console)
    text = console.export_text()
    assert "demo-admin" in text and "ada.admin" in text and "warehouse" in text
