"""The demo's last step, as an auditor would take it: every projection that can be rebuilt
(inventory, billing, notify, reconcile) is replayed from the day's history with ``oms replay``'s
own code, once those services are stopped, and compared with its live database. The replays'
databases are dropped afterwards: the demo's data stays as the services left it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.audit.replay import ReplayError
from shared.audit.replay_many import REPLAYABLE, replay_many
from shared.db import drop_databases
from shared.demo.faults import Services


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """One projection rebuilt from the history: how many events, and which tables differ."""

    service: str
    events: int
    seconds: float
    differing: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differing


def rebuild_from_history(urls: Mapping[str, str], services: Services | None = None
                         ) -> list[Rebuilt]:
    """Replay every rebuildable projection (up to what each live service handled) and compare;
    ``services`` (the runtime): stopped first, so nothing changes under the comparison."""
    if services is not None:
        for name in REPLAYABLE:
            services.stop_service(name)
    try:
        replayed = replay_many(REPLAYABLE, urls, handled_only=True)
    except ReplayError as error:  # said as a failed rebuild, not as a traceback
        return [Rebuilt("replay", 0, 0.0, (f"could not be replayed: {error}",))]
    try:
        return [Rebuilt(done.service, done.run.fed + done.run.commands, done.seconds,
                        tuple(item.table for item in done.comparison if not item.matches),
                        tuple(done.run.notes))
                for done in replayed]
    finally:
        for done in replayed:
            drop_databases(done.run.database_url, [done.run.database])
