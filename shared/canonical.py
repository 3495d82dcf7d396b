"""Canonical JSON: the bytes an event's hash covers, and the fast JSON the event rows travel in.

The canonical form is, byte for byte, ``json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode()``: what ``shared/audit/verify_export.py`` (standard library only,
for auditors) recomputes outside the system, and what every stored hash was made with. orjson
writes the same bytes for what an event holds (str keys; str, int, bool, None, lists, dicts: the
contract puts no floats in payloads, money and instants travel as strings) about five times
faster; whatever orjson refuses (an int beyond 64 bits, a non-str key) goes the standard way.
``tests/unit/test_canonical.py`` checks the two agree on generated documents.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, no ASCII escaping: the hashed spelling."""
    try:
        return orjson.dumps(document, option=_SORTED)
    except (orjson.JSONEncodeError, TypeError):
        return standard_canonical_json(document)


def standard_canonical_json(document: Any) -> bytes:
    """The reference spelling (the standard library's), which ``canonical_json`` must equal."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def fast_json(document: Any) -> str:
    """Plain JSON text (not canonical) of rows holding UUIDs and aware datetimes too."""
    return orjson.dumps(document).decode()
