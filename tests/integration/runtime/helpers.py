"""Shared bits of the runtime tests: the stand-in service command and process checks."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from shared.runtime.plan import CommandFactory, command_from_template

STANDIN = Path(__file__).resolve().parent / "standin_service.py"


def standin_command() -> CommandFactory:
    """Children that serve /health and /crash instead of the real services."""
    return command_from_template(f"{{python}} {STANDIN} {{name}}")


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """The pids still alive after waiting up to ``timeout`` for them to end."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
