"""``oms reconcile`` against a running reconcile service over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import typer
import uvicorn
from click.testing import Result
from typer.testing import CliRunner

from services.reconcile.app import make_app
from shared.cli import reconcile as reconcile_cli
from shared.clock import ManualClock
from shared.settings import OmsSettings
from tests.conftest import wait_until
from tests.integration.reconcile.test_service import publish
from tests.unit.reconcile.flows import lifecycle
from tests.unit.reconcile.samples import AT, new_order_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await wait_until(started, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def oms() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    reconcile_cli.register(app)
    return app


async def cli(url: str, *args: str) -> Result:
    """Run a command in a thread: the CLI is synchronous, the server shares this event loop."""
    return await asyncio.to_thread(CliRunner().invoke, oms(), ["reconcile", *args],
                                   env={"OMS_RECONCILE_URL": url, "COLUMNS": "200"})


async def test_status_discrepancies_and_summary(fresh_kafka, database_url):
    clock = ManualClock(AT)
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, scheduler_seconds=0.1)
    app = make_app(settings=settings, clock=clock, database_url=database_url, grace=timedelta(seconds=60))
    order_id = new_order_id()
    events = [e for e in lifecycle("shipped", order_id) if e.event_type != "revenue.recognized"]
    async with serving(app) as url:
        await publish(fresh_kafka, events)

        async def shipped_seen() -> bool:
            result = await cli(url, "status", order_id, "--json")
            return result.exit_code == 0 and '"S-1"' in result.output

        await wait_until(shipped_seen)
        clock.advance(timedelta(seconds=61))

        async def raised() -> bool:
            return "shipped_revenue_not_recognised" in (await cli(url, "discrepancies")).output

        await wait_until(raised)
        status = await cli(url, "status", order_id)
        assert status.exit_code == 0, status.output
        assert "pending" in status.output and "shipped but revenue not recognised: S-1" in status.output
        summary = await cli(url, "summary")
        assert summary.exit_code == 0
        assert "open discrepancies 1" in summary.output
        assert "shipped_revenue_not_recognised" in summary.output
        assert "shipped_revenue_not_recognised" in (await cli(url, "discrepancies", "--all")).output
        unknown = await cli(url, "status", "O-UNKNOWN")
        assert unknown.exit_code == 1 and "no event of order" in unknown.output


async def test_an_unreachable_service_says_so():
    result = await cli(f"http://127.0.0.1:{free_port()}", "summary")
    assert result.exit_code == 2
    assert "cannot reach the reconcile service" in result.output
