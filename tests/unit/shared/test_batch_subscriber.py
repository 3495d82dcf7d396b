"""The batch subscriber's idle wait: FastStream sleeps as long again when a wait found nothing,
so this bounds what an idle consumer adds to every hop (50 ms made it up to 100 per hop)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.kafka import make_broker, subscribe_batches
from shared.settings import OmsSettings


async def _ignore(_: list[Any]) -> None:
    return None


def _timeout_of(**options: Any) -> int:
    broker = make_broker(OmsSettings(kafka_bootstrap="127.0.0.1:9"))
    subscribe_batches(broker, ["t"], group_id="g", on_batch=_ignore, **options)
    (subscriber,) = broker.subscribers
    return int(subscriber.batch_timeout_ms)  # type: ignore[attr-defined]


def test_a_batch_subscriber_looks_again_after_a_few_milliseconds() -> None:
    assert _timeout_of() == 5
    assert _timeout_of(batch_timeout_ms=40) == 40


def test_the_batch_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_KAFKA_BATCH_TIMEOUT_MS", raising=False)
    assert OmsSettings().kafka_batch_timeout_ms == 5
    monkeypatch.setenv("OMS_KAFKA_BATCH_TIMEOUT_MS", "25")
    assert OmsSettings().kafka_batch_timeout_ms == 25
    monkeypatch.setenv("OMS_KAFKA_BATCH_TIMEOUT_MS", "0")
    with pytest.raises(ValueError, match="kafka_batch_timeout_ms"):
        OmsSettings()
