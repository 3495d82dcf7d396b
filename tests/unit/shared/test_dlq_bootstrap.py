"""`oms dlq redrive` produces idempotently to Apache Kafka, never to the embedded Tansu (which
refuses idempotent producers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.dlq import _bootstrap
from shared.runtime.endpoints import endpoints_file


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("OMS_KAFKA_BOOTSTRAP", "OMS_KAFKA_IDEMPOTENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path))
    target = endpoints_file(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"kafka_bootstrap": "127.0.0.1:19092"}))
    return "127.0.0.1:19092"


def test_the_embedded_broker_gets_a_plain_producer(recorded: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert _bootstrap() == (recorded, False)
    monkeypatch.setenv("OMS_KAFKA_BOOTSTRAP", recorded)  # named explicitly: still Tansu
    assert _bootstrap() == (recorded, False)


def test_another_broker_gets_an_idempotent_one_unless_told(recorded: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_KAFKA_BOOTSTRAP", "kafka-1:9092")
    assert _bootstrap() == ("kafka-1:9092", True)
    monkeypatch.setenv("OMS_KAFKA_IDEMPOTENCE", "false")
    assert _bootstrap() == ("kafka-1:9092", False)
