"""The report's JSON and markdown shapes (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

from shared.bench.endtoend import Traffic
from shared.bench.results import Report, Row, machine, percentile, ratio, utc_stamp


def test_report_renders_json_and_markdown(tmp_path: Path) -> None:
    report = Report(machine=machine(), started_at=utc_stamp(), quick=True)
    report.add(Row("1 appends", "eventsourcing", 1000.0, "events/s"))
    report.add(Row("1 appends", "ours / eventsourcing", 1.5, "x", target=">= 5x", met=False))
    report.add(Row("6 bank matching", "lines vs items", None, "s", note="not there yet"))
    document = report.to_json()
    assert document["quick"] is True and len(document["rows"]) == 3
    assert set(document["rows"][0]) >= {"bench", "name", "value", "unit", "target", "met"}
    markdown = report.to_markdown()
    assert "| 1 appends | eventsourcing | 1,000 | events/s |" in markdown
    assert "**no**" in markdown and "not measured" in markdown
    json_path, md_path = report.write(tmp_path)
    assert json.loads(json_path.read_text())["rows"][1]["met"] is False
    assert md_path.read_text() == markdown
    assert (tmp_path / "latest.json").exists()


def test_helpers() -> None:
    assert percentile([], 99) is None
    assert percentile([float(x) for x in range(1, 101)], 50) in (50.0, 51.0)
    assert percentile([5.0], 99) == 5.0
    assert ratio(10, 5) == 2 and ratio(None, 5) is None and ratio(1, 0) is None


def test_traffic_has_one_payment_per_order() -> None:
    traffic = Traffic.make(10, "t")
    messages = traffic.messages()
    assert len(messages) == 20
    assert len({m["channel_order_id"] for m in traffic.orders}) == 10
    assert all(m["channel_order_id"].endswith("-t") for m in traffic.orders)
    assert len(traffic.messages(payments=False)) == 10


def test_cli_refuses_an_unknown_benchmark() -> None:
    import typer
    from typer.testing import CliRunner

    from shared.cli import bench

    app = typer.Typer()
    bench.register(app)

    @app.callback()
    def main() -> None:
        """oms"""

    result = CliRunner().invoke(app, ["bench", "--only", "nope"])
    assert result.exit_code == 2
