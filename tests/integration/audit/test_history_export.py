"""`oms audit history` (time travel) and `oms audit export` on real PostgreSQL; the export is
re-verified here WITHOUT shared.eventstore, from the documented algorithm alone."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle

pytestmark = pytest.mark.integration

APP = cli("shared.cli.audit")
SCRIPT = Path(__file__).resolve().parents[3] / "shared" / "audit" / "verify_export.py"


async def test_history_as_of_an_instant(engine: AsyncEngine, database_url: str, tmp_path: Path
                                        ) -> None:
    await order_lifecycle(engine, "O-H")  # placed T0, confirmed T0+1m, paid T0+2m
    env = database_env(tmp_path, order=database_url)
    as_of = (T0 + timedelta(seconds=90)).isoformat()
    result = await invoke(APP, ["audit", "history", "O-H", "--as-of", as_of, "--json"], env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] == "confirmed" and body["version"] == 2
    assert [e["event_type"] for e in body["timeline"]] == ["order.placed", "order.confirmed"]
    now = await invoke(APP, ["audit", "history", "O-H"], env)
    assert now.exit_code == 0 and "paid" in now.output and "order.paid" in now.output
    unknown = await invoke(APP, ["audit", "history", "O-NONE"], env)
    assert unknown.exit_code == 1 and "no events" in unknown.output
    bad = await invoke(APP, ["audit", "history", "O-H", "--as-of", "yesterday"], env)
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


async def run_script(export: Path) -> subprocess.CompletedProcess[str]:
    """The standalone script, run as an auditor would: outside the package, in its own process."""
    return await asyncio.to_thread(subprocess.run, [sys.executable, str(SCRIPT), str(export)],
                                   capture_output=True, text=True, cwd=export.parent, check=False)


# ---- an auditor's own verification: the documented algorithm, reimplemented -----------------

def auditor_hash(event: dict[str, Any]) -> str:
    fields = ("event_id", "event_type", "schema_version", "stream_id", "stream_version",
              "occurred_at", "correlation_id", "causation_id", "actor", "payload", "key")
    document = {name: event[name] for name in fields}
    document["prev_hash"] = event["prev_hash"] or ""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def auditor_verifies(events: list[dict[str, Any]]) -> None:
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: (e["service"], e["stream_id"], e["stream_version"])):
        assert auditor_hash(event) == event["hash"], event["event_id"]
        previous = last.get((event["service"], event["stream_id"]))
        if previous is not None:
            assert event["stream_version"] == previous["stream_version"] + 1
            assert event["prev_hash"] == previous["hash"]
        last[(event["service"], event["stream_id"])] = event


async def test_export_reverifies_outside_the_system(engine: AsyncEngine, database_url: str,
                                                    tmp_path: Path) -> None:
    assert "shared.eventstore" not in auditor_hash.__code__.co_names
    await order_lifecycle(engine, "O-X")
    await order_lifecycle(engine, "O-Y")
    env = database_env(tmp_path, order=database_url)
    target = tmp_path / "export.jsonl"
    result = await invoke(APP, ["audit", "export", "--since", T0.isoformat(),
                                "--until", (T0 + timedelta(minutes=2)).isoformat(),
                                "--output", str(target)], env)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(events) == 4  # placed + confirmed of each order; the payments are at T0+2m
    assert {e["event_type"] for e in events} == {"order.placed", "order.confirmed"}
    auditor_verifies(events)
    events[1]["payload"]["total"] = "1.00"
    with pytest.raises(AssertionError):
        auditor_verifies(events)


async def test_csv_export_and_the_standalone_script(engine: AsyncEngine, database_url: str,
                                                    tmp_path: Path) -> None:
    await order_lifecycle(engine, "O-C")
    env = database_env(tmp_path, order=database_url)
    target = tmp_path / "export.csv"
    result = await invoke(APP, ["audit", "export", "--format", "csv", "-o", str(target)], env)
    assert result.exit_code == 0, result.output
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["event_type"] for r in rows] == ["order.placed", "order.confirmed", "order.paid"]
    ok = await run_script(target)
    assert ok.returncode == 0 and "OK: 3 events" in ok.stdout, ok.stdout + ok.stderr
    async with engine.begin() as conn:  # tamper, export again: the script names the event
        await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        await conn.execute(text("UPDATE events SET correlation_id = 'forged' "
                                "WHERE stream_version = 2"))
    await invoke(APP, ["audit", "export", "--format", "csv", "-o", str(target)], env)
    bad = await run_script(target)
    assert bad.returncode == 1 and "O-C v2" in bad.stdout
