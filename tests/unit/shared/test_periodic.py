"""A background job on a period (shared/periodic.py): a failing step is logged and tried again;
cancelling ends it."""

from __future__ import annotations

import asyncio

import pytest

from shared import periodic


class Log:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, str]]] = []

    def warning(self, event: str, **fields: str) -> None:
        self.warnings.append((event, fields))


async def test_a_failed_step_is_logged_and_the_job_goes_on_until_cancelled() -> None:
    log, calls = Log(), []

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ConnectionError("database away")
        if len(calls) == 3:
            raise asyncio.CancelledError  # as when the service stops

    with pytest.raises(asyncio.CancelledError):
        await periodic.every(0, step, log, "pass failed")
    assert calls == [0, 1, 2]
    assert log.warnings == [("pass failed", {"error": "database away"})]


async def test_waiting_first_runs_no_step_before_one_period() -> None:
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)

    job = asyncio.create_task(periodic.every(3600, step, Log(), "failed", wait_first=True))
    await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert calls == []
