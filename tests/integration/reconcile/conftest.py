"""Reconcile's database for a test (fresh, with the platform and reconcile schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from shared.service import prepare_database


@pytest_asyncio.fixture
async def reconcile_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepare_database(database_url, store.create_schema)
    yield engine
    await engine.dispose()
