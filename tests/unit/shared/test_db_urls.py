"""Database URL spellings for SQLAlchemy (psycopg 3 driver) and for libpq."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from shared.db import database_name, libpq_url, sqlalchemy_url


def test_sqlalchemy_and_libpq_spellings_keep_credentials_host_and_query() -> None:
    url = "postgresql://oms:s3cret@db.internal:5433/oms_order?sslmode=require"
    assert sqlalchemy_url(url) == \
        "postgresql+psycopg://oms:s3cret@db.internal:5433/oms_order?sslmode=require"
    assert libpq_url(sqlalchemy_url(url)) == url
    assert database_name(url) == "oms_order"


def test_socket_urls_survive() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert conninfo_to_dict(libpq_url(url))["host"] == "/tmp/pg"
    assert sqlalchemy_url(url).startswith("postgresql+psycopg://")


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(ValueError, match="names no database"):
        database_name("postgresql://oms@localhost")
