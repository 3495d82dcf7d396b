"""orjson's canonical spelling must equal the standard library's byte for byte: every stored hash
and the auditors' stdlib verifier (shared/audit/verify_export.py) depend on it."""

from __future__ import annotations

import importlib
import pkgutil
import typing
import uuid
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import shared.contract
from shared.canonical import canonical_json, fast_json, standard_canonical_json
from shared.contract.payloads import Payload

# What an event document can hold: no floats (the contract keeps money and instants as strings).
scalars = st.none() | st.booleans() | st.integers() | st.text()
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=2000)
@given(documents)
def test_orjson_and_the_standard_library_agree(document: object) -> None:
    assert canonical_json(document) == standard_canonical_json(document)


def test_awkward_text_and_huge_numbers_agree() -> None:
    document = {
        "controls": "".join(chr(i) for i in range(0x20)) + "\x7f\u2028\u2029\ufeff",
        "quotes": "\"\\/'", "cjk": "订单 X-100", "emoji": "\U0001f600",
        "keys": {"é": 1, "e": 2, "E": 3, "_": 4, "\U0001f600": 5, "\uffff": 6},
        "huge": 2**80, "negative": -(2**70), "edge": [2**63 - 1, -(2**63), 2**64 - 1],
    }
    assert canonical_json(document) == standard_canonical_json(document)


def _floats(model: type[BaseModel], seen: set[type]) -> list[str]:
    found: list[str] = []
    if model in seen:
        return found
    seen.add(model)
    for field, info in model.model_fields.items():
        stack: list[object] = [info.annotation]
        while stack:
            annotation = stack.pop()
            if annotation is float:
                found.append(f"{model.__name__}.{field}")
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found.extend(_floats(annotation, seen))
            stack.extend(typing.get_args(annotation))
    return found


def _all_payloads() -> list[type[Payload]]:
    for module in pkgutil.iter_modules(shared.contract.__path__):
        importlib.import_module(f"shared.contract.{module.name}")
    found: list[type[Payload]] = []
    stack = list(Payload.__subclasses__())
    while stack:
        model = stack.pop()
        found.append(model)
        stack.extend(model.__subclasses__())
    return found


def test_no_payload_declares_a_float() -> None:
    """The fast path is exact only without floats (orjson spells 1e-05 as 0.00001)."""
    models = _all_payloads()
    assert len(models) > 30  # the whole vocabulary was found
    seen: set[type] = set()
    assert [name for model in models for name in _floats(model, seen)] == []


def test_fast_json_reads_back_as_iso_instants_and_uuids() -> None:
    event_id = uuid.uuid4()
    at = datetime(2026, 12, 5, 2, 30, 1, 123456, tzinfo=UTC)
    assert fast_json([{"event_id": event_id, "occurred_at": at, "n": 1}]) == (
        f'[{{"event_id":"{event_id}","occurred_at":"2026-12-05T02:30:01.123456+00:00","n":1}}]')
