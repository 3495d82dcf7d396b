"""Only a service's own process tunes the garbage collector (``serve``); an app started inside
another program (a test run, an embedding tool) leaves that program's collector as it was."""

from __future__ import annotations

import gc

import pytest

from services.inventory.app import make_app
from shared import service
from shared.clock import ManualClock
from shared.settings import OmsSettings
from tests.conftest import running
from tests.integration.order.flows import START

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("own_process", [False, True])
async def test_the_collector_is_tuned_only_in_a_services_own_process(
        own_process: bool, restored_gc: None, database_url: str, kafka_bootstrap: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "_OWN_PROCESS", own_process)
    settings = OmsSettings(kafka_bootstrap=kafka_bootstrap, kafka_idempotence=False,
                           gc_threshold=40_000)
    app = make_app(settings=settings, clock=ManualClock(START), database_url=database_url)
    frozen = gc.get_freeze_count()
    async with running(app) as client:
        metrics = (await client.get("/metrics")).text
    expected = 40_000 if own_process else 700
    assert gc.get_threshold()[0] == expected
    assert f'oms_gc_threshold{{generation="0"}} {expected}' in metrics
    assert (gc.get_freeze_count() > frozen) == own_process
