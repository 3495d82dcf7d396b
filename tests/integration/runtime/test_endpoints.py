"""What `oms run` records for the operator commands: a service it does not run (``--services``)
still has its database found, so `oms replay reconcile --swap` (which needs reconcile stopped)
works against a running `oms run --services order,inventory,billing,notify`."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shared.db import libpq_url
from shared.runtime.endpoints import database_url, service_url, write_endpoints
from shared.runtime.info import RuntimeInfo, ServiceInfo
from shared.settings import OmsSettings, with_database

pytestmark = pytest.mark.integration


def test_a_stopped_services_database_is_found_when_it_exists(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMS_DATABASE_URL", "OMS_RECONCILE_DATABASE_URL", "OMS_BILLING_DATABASE_URL",
                 "OMS_ORDER_DATABASE_URL", "OMS_RECONCILE_URL", "OMS_RECONCILE_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    server = with_database(postgres_url, "postgres")
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        if {"oms_reconcile", "oms_billing"} & existing:
            pytest.skip("the test server already has oms_reconcile / oms_billing databases")
        conn.execute("CREATE DATABASE oms_reconcile")
    try:
        order = with_database(postgres_url, "oms_order")
        info = RuntimeInfo(tmp_path, tmp_path / "logs", "127.0.0.1:9", False, server, True, {
            "order": ServiceInfo("order", "http://127.0.0.1:18101", 18101, order,
                                 tmp_path / "order.log")})
        write_endpoints(info)
        settings = OmsSettings(data_dir=tmp_path)
        assert database_url("order", settings) == order
        assert database_url("reconcile", settings) == with_database(postgres_url, "oms_reconcile")
        assert database_url("billing", settings) is None  # never created: nothing to find
        assert service_url("order", settings) == "http://127.0.0.1:18101"
        assert service_url("reconcile", settings) == "http://127.0.0.1:8105"  # not running here
    finally:
        with psycopg.connect(libpq_url(server), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS oms_reconcile WITH (FORCE)")
