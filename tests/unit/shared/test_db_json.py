"""JSON(B) columns go through orjson (shared.db.json_dumps/json_loads): the values read back must
be exactly what the standard library (SQLAlchemy's default) would give, big integers included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.db import json_dumps, json_loads

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
