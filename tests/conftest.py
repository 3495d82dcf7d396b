"""Test infrastructure: real PostgreSQL and a real Kafka-protocol broker, never mocks.

Unless ``OMS_TEST_DATABASE_URL`` / ``OMS_TEST_KAFKA_BOOTSTRAP`` name servers, the embedded ones
(pgserver, Tansu) are started once per session, on first use only: unit tests start nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import libpq_url
from shared.runtime.embedded import EmbeddedKafka, EmbeddedPostgres
from shared.settings import with_database
from tests.stall import StallWatch

# A consumer joining its group waits at the embedded broker for half its session timeout (Tansu):
# 5 s with Kafka's usual 10 s, 1 s with 2 s. Every test that starts a service (and every service
# process the runtime tests start, which inherit the environment) joins once or more.
os.environ.setdefault("OMS_KAFKA_SESSION_TIMEOUT_MS", "2000")

# CI replays the same generated examples every run (a failure there must be reproducible and must
# not depend on luck); developers' runs explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


STALLS = StallWatch()


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Python's default collector thresholds for the test, nothing frozen afterwards, and the
    process's own thresholds back (``shared.gctune`` changes process-wide state)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    STALLS.started(item.nodeid)
    yield
    STALLS.finished()


@dataclass(frozen=True)
class Infra:
    database_url: str
    kafka_bootstrap: str


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("OMS_TEST_DATABASE_URL")
    if configured:
        STALLS.server_url = configured
        yield configured
        return
    # Not under pytest's basetemp: pytest makes that 0700, and PostgreSQL runs as its own user.
    root = Path(tempfile.mkdtemp(prefix="oms-test-pg-"))
    server = EmbeddedPostgres(root / "data", delete_on_stop=True)
    STALLS.server_url = server.start()
    yield STALLS.server_url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("OMS_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = EmbeddedKafka(log_file=tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield broker.start()
    broker.stop()


if not os.environ.get("OMS_TEST_KAFKA_BOOTSTRAP"):
    # The embedded Tansu answers a fetch only when its wait is over (see OmsSettings): services
    # the tests start in process wait as little as `oms run` makes them.
    os.environ.setdefault("OMS_KAFKA_FETCH_MAX_WAIT_MS", "20")


@pytest.fixture(scope="session")
def infra(postgres_url: str, kafka_bootstrap: str) -> Infra:
    return Infra(postgres_url, kafka_bootstrap)


async def create_database(server_url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(
        libpq_url(with_database(server_url, "postgres")), autocommit=True
    ) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


@pytest_asyncio.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = await create_database(postgres_url, name)
    yield url
    async with await psycopg.AsyncConnection.connect(
        libpq_url(with_database(postgres_url, "postgres")), autocommit=True
    ) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database with the platform schema (events, relay, inbox)."""
    from shared.service import prepare_database

    eng = await prepare_database(database_url, None)
    yield eng
    await eng.dispose()


def unique_topic(prefix: str = "test") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_kafka(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own (fresh embedded Tansu), so topics start empty."""
    configured = os.environ.get("OMS_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = EmbeddedKafka(log_file=tmp_path / "tansu.log")
    yield broker.start()
    broker.stop()


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service app's lifespan (relay, consumer, jobs) and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            yield client


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0,
                     interval: float = 0.1) -> None:
    """Poll an async condition (a broker is asynchronous); fail with a clear message on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
