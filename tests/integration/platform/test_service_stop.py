"""A service stops even when a Kafka client will not (aiokafka consumers can wait forever on their
group coordinator while stopping): after ``STOP_SECONDS`` it is left behind, with a warning, and
the rest of the shutdown (jobs, producer, database) goes on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from services.inventory.app import make_app
from shared import service
from shared.clock import ManualClock
from shared.settings import OmsSettings
from tests.conftest import running
from tests.integration.order.flows import START

pytestmark = pytest.mark.integration


async def seconds_to_stop(database_url: str, kafka_bootstrap: str) -> float:
    """Start an inventory service in process, check it answers, and time its stop."""
    settings = OmsSettings(kafka_bootstrap=kafka_bootstrap, kafka_idempotence=False)
    app = make_app(settings=settings, clock=ManualClock(START), database_url=database_url)
    async with running(app) as client:
        assert (await client.get("/health")).status_code == 200
        started = time.monotonic()
    return time.monotonic() - started


@pytest.mark.parametrize("ends_when_cancelled", [True, False])
async def test_a_kafka_client_that_will_not_stop_does_not_keep_the_service_running(
        ends_when_cancelled: bool, database_url: str, kafka_bootstrap: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(service, "STOP_SECONDS", 1.0)
    brokers: list[Any] = []
    real_make_broker = service.make_broker
    released = asyncio.Event()  # ends the stubborn stop once the test is over

    def stuck_broker(settings: OmsSettings) -> Any:
        broker = real_make_broker(settings)
        brokers.append(broker.stop)

        async def never(*args: Any, **kwargs: Any) -> None:
            while True:  # as a consumer waiting on its coordinator
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    if ends_when_cancelled:
                        raise
                    await released.wait()  # a retry loop that swallows the cancellation
                    return

        broker.stop = never
        return broker

    monkeypatch.setattr(service, "make_broker", stuck_broker)
    stopped_in = await seconds_to_stop(database_url, kafka_bootstrap)
    assert stopped_in < 10, f"the service took {stopped_in:.1f}s to stop"
    logged = capsys.readouterr()
    assert "the Kafka consumers did not stop within 1s" in logged.out + logged.err
    assert "service stopped" in logged.out + logged.err
    released.set()
    for real_stop in brokers:  # the test's own clean-up: the broker does stop
        await real_stop()


async def test_a_job_that_loses_its_cancellation_does_not_keep_the_service_running(
        database_url: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(service, "STOP_SECONDS", 1.0)
    released = asyncio.Event()

    async def stubborn_relay(self: Any) -> None:  # as Python 3.11's wait_for could make it
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await released.wait()

    monkeypatch.setattr(service.outbox.OutboxRelay, "run", stubborn_relay)
    stopped_in = await seconds_to_stop(database_url, kafka_bootstrap)
    released.set()
    assert stopped_in < 10, f"the service took {stopped_in:.1f}s to stop"
    logged = capsys.readouterr()
    assert "jobs did not stop within 1s" in logged.out + logged.err
    assert "inventory-relay" in logged.out + logged.err
