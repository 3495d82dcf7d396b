"""The runtime on the embedded servers: databases, topics, child wiring, restarts, held services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.contract.topics import ALL_TOPICS
from shared.db import libpq_url
from shared.runtime.datadir import DataDirInUse
from shared.runtime.plan import RestartPolicy
from shared.runtime.supervisor import Runtime
from shared.settings import SERVICES
from tests.conftest import wait_until
from tests.integration.runtime.helpers import alive, standin_command


@pytest.fixture(scope="module")
def runtime(module_data_dir: Path) -> Iterator[Runtime]:
    rt = Runtime(data_dir=module_data_dir, auto_ports=True, command=standin_command(),
                 restart_policy=RestartPolicy(initial=0.1), stop_timeout=5.0, start_timeout=60.0)
    with rt:
        yield rt


async def test_every_service_has_its_database(runtime: Runtime) -> None:
    info = runtime.info
    assert info.embedded_postgres and info.postgres_url
    async with await psycopg.AsyncConnection.connect(libpq_url(info.postgres_url)) as conn:
        rows = await (await conn.execute("SELECT datname FROM pg_database")).fetchall()
    names = {row[0] for row in rows}
    assert {f"oms_{name}" for name in SERVICES} <= names
    assert (info.data_dir / "pg" / "PG_VERSION").exists()


async def test_topics_exist_with_the_configured_partitions(runtime: Runtime) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=runtime.info.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(ALL_TOPICS))
    finally:
        await admin.close()
    partitions = {topic["topic"]: len(topic["partitions"]) for topic in described}
    assert partitions == dict.fromkeys(ALL_TOPICS, 6)
    assert runtime.info.embedded_kafka
    assert (runtime.info.log_dir / "tansu.log").exists()


async def test_children_get_broker_database_and_port(runtime: Runtime) -> None:
    info = runtime.info
    async with httpx.AsyncClient() as client:
        env = (await client.get(f"{info.url('inventory')}/env")).json()
    assert env["OMS_KAFKA_BOOTSTRAP"] == info.kafka_bootstrap
    assert env["OMS_INVENTORY_DATABASE_URL"] == info.database_url("inventory")
    assert env["OMS_INVENTORY_HTTP_PORT"] == str(info.services["inventory"].http_port)
    assert env["OMS_KAFKA_IDEMPOTENCE"] == "false"
    assert env["OMS_REPUBLISH_ON_START"] == "true"
    assert runtime.health() == dict.fromkeys(SERVICES, True)


async def test_a_crashed_service_is_restarted(runtime: Runtime) -> None:
    info = runtime.info
    before = runtime.pid("billing")
    assert before is not None
    async with httpx.AsyncClient() as client:
        first = (await client.get(f"{info.url('billing')}/env")).json()
        assert first["OMS_REPUBLISH_ON_START"] == "true"  # the system starts: topics are new
        await client.post(f"{info.url('billing')}/crash")

        async def back_up() -> bool:
            try:
                healthy = (await client.get(f"{info.url('billing')}/health")).status_code == 200
            except httpx.HTTPError:
                return False
            return healthy and runtime.restarts("billing") == 1

        await wait_until(back_up, timeout=30)
        # Back after a crash: the broker still holds what it published; no second history.
        again = (await client.get(f"{info.url('billing')}/env")).json()
        assert again["OMS_REPUBLISH_ON_START"] == "false"
    assert runtime.pid("billing") not in (None, before)
    assert not alive(before)
    assert runtime.status()["billing"].exit_codes == (3,)
    assert "exited with code 3; restart #1" in info.services["billing"].log_file.read_text()


async def test_a_stopped_service_stays_down_until_started(runtime: Runtime) -> None:
    pid = runtime.pid("notify")
    assert pid is not None
    runtime.stop_service("notify")
    assert not alive(pid)
    assert runtime.health(["notify"]) == {"notify": False}
    assert runtime.restarts("notify") == 0
    runtime.start_service("notify")
    runtime.wait_healthy(30, ["notify"])
    assert runtime.restarts("notify") == 0


def test_a_second_runtime_cannot_take_the_same_data_dir(runtime: Runtime) -> None:
    other = Runtime(data_dir=runtime.info.data_dir, services=["order"], auto_ports=True,
                    command=standin_command())
    with pytest.raises(DataDirInUse):
        other.start()
    state = runtime.data_dir.read_state()
    assert state is not None and state["supervisor"]["pid"] > 0  # the owner's claim is untouched


def test_info_names_every_service(runtime: Runtime) -> None:
    info = runtime.info
    assert list(info.services) == list(SERVICES)
    assert all(url.startswith("http://127.0.0.1:") for url in info.http_urls.values())
    assert all(Path(service.log_file).parent == info.log_dir for service in info.services.values())
