"""JSON(B) columns go through orjson (shared.db.json_dumps/json_loads): the values read back must
be exactly what the standard library (SQLAlchemy's default) would give, big integers included."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.db import json_document, json_dumps, json_loads

_scalars = (st.none() | st.booleans() | st.integers() | st.text()
            | st.floats(allow_nan=False, allow_infinity=False))
documents = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(documents)
def test_a_document_reads_back_as_the_standard_library_reads_it(value: Any) -> None:
    written = json_dumps(value)
    assert json_loads(written) == json.loads(json.dumps(value))
    text = written.decode() if isinstance(written, bytes) else written
    assert json_loads(text) == json.loads(json.dumps(value))


def test_integers_beyond_64_bits_stay_exact() -> None:
    big = 10**33 + 7
    assert json_loads(json_dumps({"n": big})) == {"n": big}
    assert json_loads(b'{"n": -123456789012345678901234567890}')["n"] == -123456789012345678901234567890
    assert isinstance(json_loads(b"[18446744073709551616]")[0], int)


def test_what_orjson_refuses_is_read_by_the_standard_library() -> None:
    assert json_loads('"\\ud800"') == "\ud800"  # a lone surrogate escape
    assert json_loads(b"[NaN]")[0] != json_loads(b"[NaN]")[0]  # NaN, as json.loads reads it
    assert json_loads(json_dumps({1: "int key"})) == {"1": "int key"}  # as json.dumps spells it


def test_rows_as_one_document_spell_instants_and_ids_as_postgresql_reads_them() -> None:
    at = datetime(2026, 12, 5, 9, 30, 1, 123456, tzinfo=UTC)
    event_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    rows = [{"at": at, "id": event_id, "none": None}]
    expected = [{"at": "2026-12-05T09:30:01.123456+00:00", "id": str(event_id), "none": None}]
    assert json.loads(json_document(rows)) == expected
    # what orjson refuses (an integer beyond 64 bits) keeps the same spellings and every digit
    rows[0]["big"] = 10**30
    assert json.loads(json_document(rows)) == [{**expected[0], "big": 10**30}]
    # Decimals as their strings, scale kept, on both ways
    assert json.loads(json_document([{"amount": Decimal("0.00")}])) == [{"amount": "0.00"}]
    assert json.loads(json_document([{"amount": Decimal("1.50"), "big": 10**30}])) == [
        {"amount": "1.50", "big": 10**30}]
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        json_document([{"tags": {"a"}, "big": 10**30}])


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "a": 2}', b"1e400", b"[-1e400, 1E5, -0.0, 0.1]", b'"\\u0000"', b"[NaN, Infinity]",
    b"\xef\xbb\xbf{}", '{"a": "\u738b"}'.encode("utf-16"), b'{"n": 12345678901234567890123}',
    b'"\\ud83d"'])
def test_storefront_bytes_read_as_the_standard_library_reads_them(raw: bytes) -> None:
    """The order intake reads raw storefront bytes through json_loads: same values, same errors."""
    assert repr(json_loads(raw)) == repr(json.loads(raw))


@pytest.mark.parametrize("raw", [b"\xff", b'{"a": 1', b"[1,]", b""])
def test_unreadable_bytes_fail_as_with_the_standard_library(raw: bytes) -> None:
    with pytest.raises(ValueError) as ours:
        json_loads(raw)
    with pytest.raises(ValueError) as theirs:
        json.loads(raw)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
