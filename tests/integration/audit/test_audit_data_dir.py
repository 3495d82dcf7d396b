"""An auditor handed a stopped `oms run`'s data directory verifies, reads and exports its
history with nothing else running: the directory's PostgreSQL is started for the command alone
and stopped after; stdout holds only the command's answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from shared.cli.main import app as AUDIT  # the real `oms`: its logging set up as a user gets it
from shared.runtime.embedded import EmbeddedPostgres, postmaster_pid
from shared.service import prepare_database
from shared.settings import with_database
from tests.integration.audit.support import database_env, invoke, order_lifecycle

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def logging_as_before() -> Iterator[None]:
    """`oms` sets up logging for the command (warnings, on stderr); the next tests get back
    what they had."""
    configured, before = structlog.is_configured(), structlog.get_config()
    structlog.reset_defaults()  # as in a fresh `oms` process
    yield
    if configured:
        structlog.configure(**before)
    else:
        structlog.reset_defaults()


@pytest.fixture
async def stopped_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory as `oms run` leaves it: ``pg`` with an oms_order database, stopped."""
    root = tmp_path_factory.mktemp("oms-data")
    server = EmbeddedPostgres(root / "pg")
    url = server.start()
    try:
        engine = await prepare_database(with_database(url, "oms_order"), None)
        await order_lifecycle(engine, "O-AUDIT-1")
        await engine.dispose()
    finally:
        server.stop()
    assert postmaster_pid(root / "pg") is None
    return root


async def test_verify_history_and_export_read_a_stopped_data_directory(
        stopped_data_dir: Path, tmp_path: Path) -> None:
    env = database_env(tmp_path / "elsewhere")  # no URL set, no `oms run` recorded
    verified = await invoke(AUDIT, ["audit", "verify", "--data-dir", str(stopped_data_dir)], env)
    assert verified.exit_code == 0, verified.output
    assert "order" in verified.output and "intact" in verified.output
    assert postmaster_pid(stopped_data_dir / "pg") is None  # stopped again
    history = await invoke(AUDIT, ["audit", "history", "O-AUDIT-1", "--json", "--data-dir",
                                   str(stopped_data_dir)], env)
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout)["status"] == "paid"
    exported = await invoke(AUDIT, ["audit", "export", "--data-dir", str(stopped_data_dir)], env)
    assert exported.exit_code == 0, exported.output
    events = [json.loads(line) for line in exported.stdout.splitlines()]  # nothing else on stdout
    assert [e["event_type"] for e in events] == ["order.placed", "order.confirmed", "order.paid"]
    assert postmaster_pid(stopped_data_dir / "pg") is None
    kept = await invoke(AUDIT, ["replays", "list", "--data-dir", str(stopped_data_dir)], env)
    assert kept.exit_code == 0 and "no replay databases" in kept.output, kept.output
    refused = await invoke(AUDIT, ["replay", "notify", "--data-dir", str(stopped_data_dir)], env)
    assert refused.exit_code == 2 and "no database for notify" in refused.output, refused.output
    assert postmaster_pid(stopped_data_dir / "pg") is None


async def test_a_directory_without_postgresql_data_is_named(tmp_path: Path) -> None:
    env = database_env(tmp_path / "elsewhere")
    result = await invoke(AUDIT, ["audit", "verify", "--data-dir", str(tmp_path / "none")], env)
    assert result.exit_code == 2
    assert "holds no PostgreSQL data" in " ".join(result.output.split())


async def test_a_named_data_directory_wins_over_configured_databases(
        stopped_data_dir: Path, tmp_path: Path, database_url: str) -> None:
    """The operator named the directory: its history is read, not the database OMS_DATABASE_URL
    (or a running `oms run` elsewhere) points at."""
    env = database_env(tmp_path / "elsewhere", order=database_url)  # an empty database
    result = await invoke(AUDIT, ["audit", "history", "O-AUDIT-1", "--data-dir",
                                  str(stopped_data_dir)], env)
    assert result.exit_code == 0, result.output
    assert "O-AUDIT-1" in result.output and "paid" in result.output
