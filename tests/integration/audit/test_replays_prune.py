"""`oms replays list|prune`: the databases replays leave behind are listed and the older ones
dropped, never a live one nor one with a session open on it (a replay still running)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shared.audit.prune import KeptDatabase, kept_databases, to_prune
from shared.db import libpq_url
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import cli, database_env, invoke
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration


def kept(service: str, kind: str, number: int, sessions: int = 0) -> KeptDatabase:
    return KeptDatabase(service, kind, number, f"oms_{service}_{kind}_{number}", 1, sessions)


def test_the_newest_of_each_kind_per_service_stay() -> None:
    databases = [kept("notify", "replay", n) for n in (3, 1, 2)] + [
        kept("notify", "before_replay", 2), kept("billing", "replay", 1),
        kept("billing", "replay", 2, sessions=1), kept("billing", "replay", 3)]
    drop_, spared = to_prune(databases, 1, live={"oms_notify_replay_1"})
    assert [d.name for d in drop_] == ["oms_billing_replay_1", "oms_notify_replay_2"]
    assert [d.name for d in spared] == ["oms_billing_replay_2", "oms_notify_replay_1"]
    assert {d.name for d in to_prune(databases, 0)[0]} == {
        d.name for d in databases if not d.sessions}
    with pytest.raises(ValueError):
        to_prune(databases, -1)


async def test_prune_drops_the_older_replays_and_spares_the_busy_and_the_live(
        postgres_url: str, tmp_path: Path) -> None:
    names = [f"oms_notify_replay_{n}" for n in (9001, 9002, 9003)] + [
        "oms_notify_before_replay_9001", "oms_notify_before_replay_9002"]
    live = "t_prune_live_notify"
    for name in (*names, live):
        await create_database(postgres_url, name)
    busy = await psycopg.AsyncConnection.connect(
        libpq_url(with_database(postgres_url, "oms_notify_replay_9001")))
    try:
        found = await kept_databases(postgres_url, ["notify"])
        mine = [d for d in found if d.name in names]
        assert [(d.kind, d.number) for d in mine] == [
            ("before_replay", 9001), ("before_replay", 9002),
            ("replay", 9001), ("replay", 9002), ("replay", 9003)]
        assert [d.sessions for d in mine if d.name == "oms_notify_replay_9001"] == [1]
        env = database_env(tmp_path, notify=with_database(postgres_url, live))
        app = cli("shared.cli.replays")
        listed = await invoke(app, ["replays", "list", "--service", "notify"], env)
        assert listed.exit_code == 0, listed.output
        assert all(name in listed.output for name in names), listed.output
        dry = await invoke(app, ["replays", "prune", "--service", "notify", "--dry-run"], env)
        assert dry.exit_code == 0 and "would drop" in dry.output, dry.output
        assert {d.name for d in await kept_databases(postgres_url, ["notify"])} >= set(names)
        pruned = await invoke(app, ["replays", "prune", "--service", "notify"], env)
        assert pruned.exit_code == 0, pruned.output
        assert "kept oms_notify_replay_9001: 1 session(s) on it" in pruned.output
        left = {d.name for d in await kept_databases(postgres_url, ["notify"])}
        assert left == {"oms_notify_replay_9003", "oms_notify_before_replay_9002",
                        "oms_notify_replay_9001"}
    finally:
        await busy.close()
        await drop(postgres_url, *names, live)
