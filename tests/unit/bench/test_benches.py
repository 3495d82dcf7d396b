"""Each database benchmark runs at tiny sizes and reports its rows (no timing asserted)."""

from __future__ import annotations

import pytest

from shared.bench.bank import fixtures
from shared.bench.infra import BenchInfra
from shared.bench.replay import run_replay
from shared.bench.results import Report, Sizes
from shared.bench.suite import run


@pytest.fixture
def bench_server(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OMS_BENCH_DATABASE_URL", postgres_url)
    return postgres_url


def names(report: Report, bench: str) -> list[str]:
    return [r.name for r in report.rows if r.bench == bench]


def test_appends_and_batches(bench_server: str) -> None:
    lines: list[str] = []
    report = run(Sizes.tiny(), only="appends", log=lines.append)
    assert "eventsourcing 9.5.6, 1 writer(s)" in names(report, "1 appends")
    assert "oms group commit, 4 writer(s)" in names(report, "1 appends")
    ratio_row = next(r for r in report.rows if r.name.startswith("best ours / eventsourcing, 4"))
    assert ratio_row.value is not None and ratio_row.target == ">= 5x"
    report = run(Sizes.tiny(), only="batches", log=lines.append)
    assert any(n.startswith("raw psycopg COPY") for n in names(report, "2 batches"))
    assert all(r.value is not None and r.value > 0 for r in report.rows)
    assert lines


def test_replay_and_bank(bench_server: str) -> None:
    # The synthetic reconcile replay; the replay of every projection (which needs the five
    # services running) is tests/e2e/test_bench_replay.py.
    report = Report()
    sizes = Sizes.tiny()
    infra = BenchInfra().start()
    try:
        run_replay(report, infra.create_database, sizes.replay_events, sizes.replay_batch,
                   log=lambda _: None)
    finally:
        infra.stop()
    rows = report.rows
    assert rows[0].value is not None and rows[0].value > 0
    assert rows[1].name.startswith("1,000,000 events") and rows[1].target == "<= 60"
    report = run(Sizes.tiny(), only="bank", log=lambda _: None)
    assert report.rows[0].bench == "6 bank matching"
    assert report.rows[0].name.startswith("index build") and report.rows[0].unit == "s"
    assert report.rows[1].unit == "lines/s" and report.rows[1].value
    in_memory = report.rows[2]
    assert "extrapolated" in in_memory.name and "in memory" in in_memory.note
    imported = report.rows[3]  # oms bank import's own path, through PostgreSQL
    assert imported.name.startswith("oms bank import: 50 lines vs 200 open items")
    assert imported.value and imported.value > 0 and "imported" in imported.note
    assert imported.met is None  # judged against the target at its full size only
    assert "| 6 bank matching |" in report.to_markdown()


def test_the_bank_fixture_exercises_every_rule_and_the_index_agrees_with_the_scan() -> None:
    from services.reconcile.bank.index import OpenItems
    from services.reconcile.bank.matching import MatchPolicy, apply, decide

    lines, invoices = fixtures(200, 2000)
    items = OpenItems(invoices, MatchPolicy())
    rules = set()
    for line in lines:
        expected = decide(line, invoices, MatchPolicy())
        invoices = apply(invoices, expected)
        decision = items.decide(line)
        items.apply(decision)
        assert decision == expected
        rules.add((decision.rule, decision.matched))
    assert {("reference", True), ("amount_in_window", True), ("several_invoices_same_customer", True),
            ("amount_within_tolerance", False), ("none", False)} <= rules


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        run(Sizes.tiny(), only="nope")


def test_orders_sets_the_history_bench_3_writes_and_bench_5_replays(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shared.cli import bench as bench_cli
    from shared.cli.main import app

    asked: list[tuple[Sizes, str | None]] = []

    def fake_run(sizes: Sizes, *, only: str | None = None, quick: bool = False, log=print) -> Report:
        asked.append((sizes, only))
        return Report(machine={}, started_at="2026-12-05T00:00:00Z", quick=quick)

    monkeypatch.setattr(bench_cli, "run", fake_run)
    result = CliRunner().invoke(app, ["bench", "--only", "replay", "--orders", "111000",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [(sizes, only)] = asked
    assert (sizes.e2e_orders, only) == (111_000, "replay")
    assert sizes.latency_rate == Sizes().latency_rate  # the rest as by default
    refused = CliRunner().invoke(app, ["bench", "--orders", "0", "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "--orders" in refused.output
