"""The PostgreSQL server and broker one bench run measures on (embedded unless configured)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from shared.db import database_name, drop_databases, libpq_url
from shared.runtime.embedded import EmbeddedKafka, EmbeddedPostgres

DATABASE_ENV = "OMS_BENCH_DATABASE_URL"


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@dataclass
class BenchInfra:
    """Owns what it started (a temp-dir PostgreSQL, a Tansu broker) and the databases it made."""

    server_url: str = ""
    bootstrap: str = ""
    _root: Path | None = None
    _postgres: EmbeddedPostgres | None = None
    _kafka: EmbeddedKafka | None = None
    _databases: list[str] = field(default_factory=list)

    def start(self, *, kafka: bool = False) -> BenchInfra:
        configured = os.environ.get(DATABASE_ENV)
        if configured:
            self.server_url = configured
        else:
            # Not under a 0700 pytest dir: PostgreSQL may run as its own user.
            self._root = Path(tempfile.mkdtemp(prefix="oms-bench-pg-"))
            self._postgres = EmbeddedPostgres(self._root / "data", delete_on_stop=True)
            self.server_url = self._postgres.start()
        if kafka:
            self.start_kafka()
        return self

    @property
    def postgres_pid(self) -> int | None:
        """The embedded postmaster (its backends are its children), None for a configured server."""
        return self._postgres.pid if self._postgres is not None else None

    @property
    def broker_pid(self) -> int | None:
        """The embedded broker, None for a configured one."""
        return self._kafka.pid if self._kafka is not None else None

    def start_kafka(self) -> str:
        if not self.bootstrap:
            self._kafka = EmbeddedKafka()
            self.bootstrap = self._kafka.start()
        return self.bootstrap

    def create_database(self, prefix: str) -> str:
        name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(libpq_url(with_database(self.server_url, "postgres")),
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._databases.append(name)
        return with_database(self.server_url, name)

    def adopt(self, url: str) -> None:
        """A database made on the bench's server by someone else, dropped with the bench's own."""
        self._databases.append(database_name(url))

    def stop(self) -> None:
        if self.server_url:
            with contextlib.suppress(psycopg.Error):
                drop_databases(self.server_url, self._databases)
        self._databases.clear()
        if self._kafka is not None:
            self._kafka.stop()
            self._kafka = None
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
