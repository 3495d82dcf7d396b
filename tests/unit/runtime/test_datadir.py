"""The data directory: one owner at a time, cleaning up after a dead one, careful wiping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.runtime.datadir import DataDir, DataDirInUse


def test_a_claim_records_the_owner_and_a_release_drops_it(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "oms")
    data.claim()
    state = data.read_state()
    assert state is not None and state["supervisor"]["pid"] == os.getpid()
    assert data.logs.is_dir()
    with pytest.raises(DataDirInUse, match="in use"):
        DataDir(tmp_path / "oms").claim()
    data.release()
    assert data.read_state() is None
    DataDir(tmp_path / "oms").claim()


def test_leftovers_of_a_dead_owner_are_stopped(tmp_path: Path) -> None:
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        data = DataDir(tmp_path)
        data.state_file.parent.mkdir(parents=True)
        created = psutil.Process(leftover.pid).create_time()
        data.state_file.write_text(json.dumps({
            "supervisor": {"pid": leftover.pid, "create_time": created - 100},  # pid reused: dead
            "processes": [{"role": "service:order", "pid": leftover.pid, "create_time": created}],
        }))
        data.claim()
        assert leftover.wait(10) is not None
    finally:
        leftover.kill()
        leftover.wait()


def test_a_reused_pid_is_not_killed(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        data = DataDir(tmp_path)
        data.state_file.parent.mkdir(parents=True)
        data.state_file.write_text(json.dumps({
            "supervisor": {"pid": 0, "create_time": 0.0},
            "processes": [{"role": "tansu", "pid": bystander.pid, "create_time": time.time() - 3600}],
        }))
        data.claim()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_wipe_removes_logs_and_refuses_foreign_files(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.claim()
    (data.logs / "order.log").write_text("old")
    data.wipe()
    assert data.logs.is_dir() and not (data.logs / "order.log").exists()
    assert data.read_state() is not None  # the claim survives the wipe
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match=r"refusing to wipe .*notes\.txt"):
        data.wipe()
