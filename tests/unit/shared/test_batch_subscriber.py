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


def _session_of(**options: Any) -> tuple[int, int]:
    broker = make_broker(OmsSettings(kafka_bootstrap="127.0.0.1:9"))
    subscribe_batches(broker, ["t"], group_id="g", on_batch=_ignore, **options)
    (subscriber,) = broker.subscribers
    args = subscriber._connection_args  # type: ignore[attr-defined]
    return int(args["session_timeout_ms"]), int(args["heartbeat_interval_ms"])


def test_the_session_timeout_reaches_the_consumer_with_heartbeats_a_third_of_it() -> None:
    assert _session_of() == (10_000, 3_000)  # aiokafka's own defaults
    assert _session_of(session_timeout_ms=2_000) == (2_000, 666)
    assert _session_of(session_timeout_ms=45_000) == (45_000, 3_000)


def test_the_session_timeout_is_a_setting_and_the_embedded_runtime_shortens_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from shared.runtime.plan import service_env

    monkeypatch.delenv("OMS_KAFKA_SESSION_TIMEOUT_MS", raising=False)
    assert OmsSettings().kafka_session_timeout_ms == 10_000
    monkeypatch.setenv("OMS_KAFKA_SESSION_TIMEOUT_MS", "500")
    with pytest.raises(ValueError, match="kafka_session_timeout_ms"):
        OmsSettings()

    def env(embedded: bool, base: dict[str, str]) -> dict[str, str]:
        return service_env("order", base=base, extra={}, kafka_bootstrap="127.0.0.1:9",
                           database_url="postgresql://x/y", http_port=1, data_dir=tmp_path,
                           embedded_kafka=embedded)

    assert env(True, {})["OMS_KAFKA_SESSION_TIMEOUT_MS"] == "6000"
    assert env(True, {"OMS_KAFKA_SESSION_TIMEOUT_MS": "2000"})["OMS_KAFKA_SESSION_TIMEOUT_MS"] == "2000"
    assert "OMS_KAFKA_SESSION_TIMEOUT_MS" not in env(False, {})  # Apache Kafka: the settings' own
