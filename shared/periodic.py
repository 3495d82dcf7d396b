"""A service's background job that runs on a period for as long as the service does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def every(seconds: float, step: Callable[[], Awaitable[object]], log: Any, failed: str, *,
                wait_first: bool = False) -> None:
    """Run ``step`` every ``seconds`` until cancelled. A step that fails (the database away, a
    blip) is logged as a warning ``failed`` with the error and tried again next period: one
    failure must not end the job. ``wait_first``: the first step after one period, not at once."""
    if wait_first:
        await asyncio.sleep(seconds)
    while True:
        try:
            await step()
        except Exception as error:  # cancellation is not an Exception: it ends the job
            log.warning(failed, error=str(error))
        await asyncio.sleep(seconds)
