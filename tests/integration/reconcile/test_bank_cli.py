"""``oms bank import`` and ``oms reconcile report`` against a running reconcile over real HTTP."""

from __future__ import annotations

import asyncio

import typer
from click.testing import Result
from typer.testing import CliRunner

from services.reconcile.app import make_app
from shared.cli import bank as bank_cli
from shared.cli import reconcile as reconcile_cli
from shared.clock import ManualClock
from shared.settings import OmsSettings
from tests.conftest import wait_until
from tests.integration.reconcile.bank_flows import invoiced_order
from tests.integration.reconcile.test_cli import free_port, serving
from tests.integration.reconcile.test_service import publish
from tests.unit.reconcile.samples import AT


def oms() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    bank_cli.register(app)
    reconcile_cli.register(app)
    return app


async def cli(url: str, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, oms(), list(args),
                                   env={"OMS_RECONCILE_URL": url, "COLUMNS": "200"})


def icbc_export(channel_order_id: str) -> bytes:
    return ("交易流水号,交易日期,借方发生额,贷方发生额,币种,对方户名,摘要,附言\n"
            f"ICBC-1,2026/11/22,,395.00,人民币,王芳,货款,{channel_order_id}\n"
            "ICBC-2,2026/11/22,,,人民币,王芳,,\n").encode("gbk")


async def test_bank_import_and_report_commands(fresh_kafka, database_url, tmp_path):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, clock=ManualClock(AT), database_url=database_url)
    order_id, events = invoiced_order("INV-2026-000201", "C-7")
    file = tmp_path / "icbc.csv"
    file.write_bytes(icbc_export(f"TM-{order_id[-6:]}"))
    async with serving(app) as url:
        await publish(fresh_kafka, events)

        async def invoiced() -> bool:
            result = await cli(url, "reconcile", "report", "--by", "customer", "--format", "csv")
            return "C-7,CNY,1,395.00,395.00" in result.output

        await wait_until(invoiced)
        first = await cli(url, "bank", "import", str(file), "--format", "icbc")
        assert first.exit_code == 1, first.output  # one row refused
        assert "imported 1" in first.output and "matched 1" in first.output
        assert "line 3" in first.output and "neither filled" in first.output
        again = await cli(url, "bank", "import", str(file), "--format", "icbc", "--json")
        assert '"already_imported": 1' in again.output and '"imported": 0' in again.output
        lines = await cli(url, "bank", "lines")
        assert lines.exit_code == 0 and "ICBC-1" in lines.output and "INV-2026-000201" in lines.output
        narrow = await asyncio.to_thread(CliRunner().invoke, oms(), ["bank", "lines", "--limit", "1"],
                                         env={"OMS_RECONCILE_URL": url, "COLUMNS": "80"})
        assert narrow.exit_code == 0, narrow.output
        assert narrow.output.splitlines()[:2] == ["bank lines (1; the first 1, --limit for more)",
                                                  "ICBC-1"]  # a record, nothing cut at 80 columns
        assert "INV-2026-000201" in narrow.output and "…" not in narrow.output
        none = await cli(url, "bank", "lines", "--from", "2026-11-23")
        assert none.exit_code == 0 and "bank lines (0)" in none.output
        bad = await cli(url, "bank", "lines", "--from", "2026-13-01")
        assert bad.exit_code == 2 and "--from" in bad.output
        report = await cli(url, "reconcile", "report", "--by", "channel", "--format", "csv")
        assert report.exit_code == 0
        assert report.output.splitlines()[1] == "tmall,CNY,1,395.00,395.00,0.00,395.00,0"
        table = await cli(url, "reconcile", "report", "--by", "salesperson")
        assert table.exit_code == 0 and "(none)" in table.output
        html = await cli(url, "reconcile", "report", "--by", "day", "--format", "html")
        assert "<table>" in html.output
        denied = await cli(url, "bank", "import", str(file), "--api-key", "demo-auditor")
        assert denied.exit_code == 1 and "403" in denied.output


async def test_an_unreachable_service_says_so(tmp_path):
    file = tmp_path / "s.csv"
    file.write_text("transaction_id,booked_at,amount,currency\n")
    result = await cli(f"http://127.0.0.1:{free_port()}", "bank", "import", str(file))
    assert result.exit_code == 2 and "cannot reach the reconcile service" in result.output
