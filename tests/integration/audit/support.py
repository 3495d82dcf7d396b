"""Shared helpers of the audit tests: run a CLI command against given databases, write events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from click.testing import Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed, OrderPaid, OrderPlaced
from shared.db import create_engine
from shared.eventstore import Meta, append
from shared.settings import SERVICES
from shared.upcasting import upcast

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
META = Meta(correlation_id="corr-audit", actor=SYSTEM)
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "events_v1.jsonl"


def cli(register_name: str) -> typer.Typer:
    """A typer app with one command module registered (as ``oms`` will once it is listed)."""
    import importlib

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    importlib.import_module(register_name).register(app)
    return app


def database_env(data_dir: Path, **urls: str) -> dict[str, str | None]:
    """Only the named services have a database; nothing is found through a running ``oms run``."""
    env: dict[str, str | None] = {"OMS_DATABASE_URL": None, "OMS_DATA_DIR": str(data_dir)}
    for service in SERVICES:
        env[f"OMS_{service.upper()}_DATABASE_URL"] = urls.get(service)
    return env


async def invoke(app: typer.Typer, args: list[str], env: dict[str, str | None]) -> Result:
    """Run a command in a thread (the commands run their own event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, args, env=env, catch_exceptions=False)


def placed(order_id: str) -> OrderPlaced:
    raw = json.loads(FIXTURE.read_text(encoding="utf-8").splitlines()[0])["payload"]
    _, payload = upcast("order.placed", 1, raw)
    return OrderPlaced.model_validate({**payload, "order_id": order_id})


async def order_lifecycle(engine: AsyncEngine, order_id: str, clock: ManualClock | None = None
                          ) -> ManualClock:
    """placed, confirmed, paid, one minute apart each, in three transactions."""
    clock = clock or ManualClock(T0)
    total = Decimal("400.00")
    steps: list[Any] = [placed(order_id), OrderConfirmed(order_id=order_id, total=total,
                                                         currency="CNY"),
                        OrderPaid(order_id=order_id, paid_amount=total, currency="CNY")]
    for version, payload in enumerate(steps):
        async with engine.begin() as conn:
            await append(conn, order_id, version, [payload], meta=META, clock=clock, key=order_id)
        clock.advance(timedelta(minutes=1))
    return clock


async def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Every row ``query`` returns from the database at ``url``."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(query))]
    finally:
        await engine.dispose()
