"""The runtime's data directory: PostgreSQL data, logs, and the record of who runs on it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil  # a dependency of pgserver

from shared.logging import get_logger
from shared.runtime.embedded import stop_leftover_postgres

log = get_logger(__name__)

# What `oms run` creates in a data directory; `--fresh` refuses to wipe anything else.
OWN_ENTRIES = frozenset({"pg", "logs", "run"})


class DataDirInUse(RuntimeError):
    """Another live runtime owns this data directory."""


def _identity(pid: int) -> float | None:
    """The process's start time (tells a live process from a reused pid), None when gone."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def _same_process(record: Mapping[str, Any]) -> bool:
    pid, created = record.get("pid"), record.get("create_time")
    if not isinstance(pid, int) or not isinstance(created, float | int):
        return False
    now = _identity(pid)
    return now is not None and abs(now - float(created)) < 0.05


def terminate_tree(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM a process and its descendants, SIGKILL what is left after ``timeout``."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout)


class DataDir:
    """``<root>/pg`` (PostgreSQL), ``<root>/logs`` and ``<root>/run/runtime.json`` (pids)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.pg = self.root / "pg"
        self.logs = self.root / "logs"
        self.state_file = self.root / "run" / "runtime.json"

    def read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def claim(self) -> None:
        """Take the directory: refuse when a live runtime owns it; clean up after a dead one."""
        state = self.read_state()
        if state is not None:
            owner = state.get("supervisor") or {}
            if _same_process(owner):
                raise DataDirInUse(
                    f"{self.root} is in use by a running `oms run` (pid {owner.get('pid')}); "
                    "stop it first or choose another --data-dir"
                )
            for record in state.get("processes", []):
                if isinstance(record, dict) and _same_process(record):
                    log.warning("stopping a leftover process of a runtime that died",
                                role=record.get("role"), pid=record["pid"])
                    terminate_tree(int(record["pid"]))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.record({})

    def record(self, processes: Mapping[str, int]) -> None:
        """Write who runs on this directory now (so the next start can clean up after a crash)."""
        me = os.getpid()
        entries = []
        for role, pid in processes.items():
            created = _identity(pid)
            if created is not None:
                entries.append({"role": role, "pid": pid, "create_time": created})
        state = {"supervisor": {"pid": me, "create_time": _identity(me)}, "processes": entries}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    def foreign_entries(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(entry.name for entry in self.root.iterdir() if entry.name not in OWN_ENTRIES)

    def wipe(self) -> None:
        """Delete PostgreSQL data and logs (``--fresh``); keeps the claim in ``run/``."""
        foreign = self.foreign_entries()
        if foreign:
            raise RuntimeError(
                f"refusing to wipe {self.root}: it holds files oms did not create "
                f"({', '.join(foreign[:5])}); remove them or choose another --data-dir"
            )
        stop_leftover_postgres(self.pg)
        for entry in (self.pg, self.logs):
            if entry.exists():
                shutil.rmtree(entry)
        self.logs.mkdir(parents=True, exist_ok=True)
