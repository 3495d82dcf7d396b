"""Which columns a projection checksum covers: not the ones that depend on when or in which run."""

from __future__ import annotations

import pytest

from shared.audit.checksum import PLATFORM_TABLES, stable_column, without_instants


@pytest.mark.parametrize(("name", "data_type", "kept"), [
    ("order_id", "text", True),
    ("facts", "jsonb", True),
    ("on_hand", "integer", True),
    ("updated_at", "timestamp with time zone", False),
    ("business_day", "date", False),
    ("placed_event_id", "uuid", False),
    ("detected_event_id", "text", False),
    ("entry_id", "serial", False),
    ("revision", "bigint", False),  # how many saves: depends on the batches
])
def test_stable_columns(name: str, data_type: str, kept: bool) -> None:
    assert stable_column(name, data_type) is kept


def test_platform_tables_are_not_projections() -> None:
    assert {"events", "inbox", "dead_letters", "relay_checkpoints"} <= PLATFORM_TABLES


@pytest.mark.parametrize(("document", "masked"), [
    ('{"since": "2026-12-05T03:00:59.262031+00:00"}', '{"since": "<instant>"}'),
    ('{"at": "2026-12-05T03:00:57Z", "b": "2026-12-05 03:00:57+08"}',
     '{"at": "<instant>", "b": "<instant>"}'),
    # not instants: a date alone, an id that holds one, money, plain text
    ('{"day": "2026-12-05", "id": "X-2026-12-05T03:00", "total": "199.00", "k": "paid"}',
     '{"day": "2026-12-05", "id": "X-2026-12-05T03:00", "total": "199.00", "k": "paid"}'),
    (None, None),
])
def test_instants_inside_json_are_left_out(document: str | None, masked: str | None) -> None:
    """A replay's clock is each event's time, the live one's the moment it handled it: the
    instants a sheet keeps inside its JSON (a finding's ``since``) differ by the lag."""
    assert without_instants(document) == masked
