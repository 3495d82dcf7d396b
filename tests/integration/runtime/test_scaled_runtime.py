"""``oms run --scale``: several supervised instances of a service, each with its port, log and
instance name, restarted and held one by one or all together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.runtime.endpoints import endpoints_file
from shared.runtime.plan import RestartPolicy
from shared.runtime.supervisor import Runtime
from tests.integration.runtime.helpers import alive, standin_command


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(data_dir=tmp_path_factory.mktemp("scaled"), services=["order", "billing"],
                 scale={"billing": 3}, auto_ports=True, command=standin_command(),
                 restart_policy=RestartPolicy(initial=0.1), stop_timeout=5.0, start_timeout=60.0)
    with rt:
        yield rt


def env_of(url: str) -> dict[str, str]:
    return dict(httpx.get(f"{url}/env", timeout=10).json())


def test_each_instance_has_its_port_log_and_name(scaled: Runtime) -> None:
    info = scaled.info
    assert list(info.all_instances) == ["order", "billing", "billing-2", "billing-3"]
    assert scaled.instances == ["order", "billing", "billing-2", "billing-3"]
    assert info.services["billing"] is info.instances_of("billing")[0]
    assert len({i.http_port for i in info.all_instances.values()}) == 4
    assert scaled.health() == dict.fromkeys(info.all_instances, True)
    for n, instance in enumerate(info.instances_of("billing")):
        env = env_of(instance.url)
        assert env["OMS_INSTANCE"] == instance.name
        assert env["OMS_BILLING_HTTP_PORT"] == str(instance.http_port)
        assert env["OMS_BILLING_DATABASE_URL"] == info.database_url("billing")  # one database
        # The history is sent again once per start of the system, by the first instance only.
        assert env["OMS_REPUBLISH_ON_START"] == ("true" if n == 0 else "false")
        assert instance.log_file == info.log_dir / f"{instance.name}.log"
    written = json.loads(endpoints_file(Path(info.data_dir)).read_text())
    assert written["instances"]["billing"] == [i.url for i in info.instances_of("billing")]
    assert written["services"]["billing"]["url"] == info.url("billing")


def test_one_instance_is_restarted_on_its_own(scaled: Runtime) -> None:
    others = [scaled.pid("billing"), scaled.pid("billing-3")]
    victim = scaled.pid("billing-2")
    assert victim is not None
    scaled.kill_service("billing-2")
    scaled.wait_healthy(30)
    _wait_restarted(scaled, "billing-2")
    assert scaled.pid("billing-2") not in (None, victim)
    assert [scaled.pid("billing"), scaled.pid("billing-3")] == others
    assert scaled.restarts("billing-2") == 1 and scaled.restarts("billing-1") == 0
    assert "restart #1" in scaled.info.all_instances["billing-2"].log_file.read_text()


def test_a_service_name_holds_every_instance_and_its_number_only_one(scaled: Runtime) -> None:
    first = scaled.pid("billing")
    assert first is not None
    scaled.stop_service("billing-1")
    assert not alive(first) and scaled.pid("billing-2") is not None
    assert scaled.health(["billing-1"]) == {"billing": False}
    scaled.stop_service("billing")
    assert all(scaled.pid(name) is None for name in ("billing", "billing-2", "billing-3"))
    assert scaled.health(["billing"]) == {"billing": False, "billing-2": False, "billing-3": False}
    assert scaled.pid("order") is not None
    scaled.start_service("billing")
    scaled.wait_healthy(30, ["billing"])
    assert all(scaled.health(["billing"]).values())


def _wait_restarted(rt: Runtime, name: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while rt.restarts(name) < 1 or not rt.health([name])[name]:
        assert time.monotonic() < deadline, rt.status()
        time.sleep(0.1)
