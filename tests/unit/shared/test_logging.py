"""Log lines about a consumer's message carry its fields (``shared.logging.about``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.logging import about, configure_logging, get_logger


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    before = structlog.get_config()
    configure_logging("json", "INFO")
    structlog.contextvars.clear_contextvars()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]

    yield read
    structlog.configure(**before)


def test_a_line_inside_the_block_carries_the_messages_fields_and_its_own_win(lines: Any) -> None:
    log = get_logger("t")
    with about(lambda: {"event_id": "E-1", "order_id": "ORD-1"}):
        log.warning("handler failed", order_id="ORD-own")
        with about(lambda: {"event_id": "E-2"}):
            log.info("inner")
    log.info("outside")
    first, inner, outside = lines()
    assert (first["event_id"], first["order_id"]) == ("E-1", "ORD-own")
    assert inner["event_id"] == "E-2" and "order_id" not in inner  # the innermost block only
    assert "event_id" not in outside


def test_the_fields_are_worked_out_only_when_a_line_is_written(lines: Any) -> None:
    calls: list[int] = []

    def describe() -> dict[str, str]:
        calls.append(1)
        return {"event_id": "E-1"}

    log = get_logger("t")
    with about(describe):
        log.debug("filtered out by the level")
    assert calls == [] and lines() == []
    with about(describe):
        log.info("written")
    assert calls == [1] and lines()[0]["event_id"] == "E-1"
