"""Which columns a projection checksum covers: not the ones that depend on when or in which run."""

from __future__ import annotations

import pytest

from shared.audit.checksum import PLATFORM_TABLES, stable_column


@pytest.mark.parametrize(("name", "data_type", "kept"), [
    ("order_id", "text", True),
    ("facts", "jsonb", True),
    ("on_hand", "integer", True),
    ("updated_at", "timestamp with time zone", False),
    ("business_day", "date", False),
    ("placed_event_id", "uuid", False),
    ("detected_event_id", "text", False),
    ("entry_id", "serial", False),
])
def test_stable_columns(name: str, data_type: str, kept: bool) -> None:
    assert stable_column(name, data_type) is kept


def test_platform_tables_are_not_projections() -> None:
    assert {"events", "inbox", "dead_letters", "relay_checkpoints"} <= PLATFORM_TABLES
