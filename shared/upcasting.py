"""Schema evolution: named upcasters that upgrade stored event payloads to the current version on read.

Stored events are never edited (the hash chain covers the payload as written); an old payload is
upgraded each time it is read, one version step at a time, by a small named function registered
for ``(event_type, from_version)``. Hash verification must always use the payload as stored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

PayloadDict = dict[str, Any]
Upcaster = Callable[[PayloadDict], PayloadDict]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register ``function`` as the step from ``from_version`` to ``from_version + 1``."""

    def register(function: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in UPCASTERS:
            raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
        UPCASTERS[key] = function
        return function

    return register


def upcast(event_type: str, schema_version: int, payload: PayloadDict) -> tuple[int, PayloadDict]:
    """The payload upgraded through every registered step; the input dict is left untouched."""
    version = schema_version
    current = payload
    while (step := UPCASTERS.get((event_type, version))) is not None:
        current = step(copy.deepcopy(current))
        version += 1
    return version, current


def latest_version(event_type: str, schema_version: int = 1) -> int:
    """The version a payload of ``schema_version`` ends at after upcasting."""
    version = schema_version
    while (event_type, version) in UPCASTERS:
        version += 1
    return version


@upcaster("order.placed", 1)
def upcast_order_placed_v1_v2(payload: PayloadDict) -> PayloadDict:
    """order.placed v1 -> v2.

    v1 (the first intake) kept the customer's tier at the top level (``customer_tier``), priced
    lines with ``price`` and did not number them, and had no ``flags``. v2 moved the tier into
    ``customer.tier``, renamed ``price`` to ``unit_price``, numbers lines from 1 (``line_no``) and
    lists review ``flags`` (empty for v1 orders: duplicate detection did not exist yet).
    ``customs`` and ``group_buy`` are optional in v2 and simply absent from v1 orders.

    Idempotent on payloads already in the v2 shape, so events written by code that still labels
    them schema_version 1 (before OrderPlaced.schema_version is raised to 2) pass unchanged.
    """
    customer = dict(payload.get("customer") or {})
    tier = payload.pop("customer_tier", None)
    if tier is not None and "tier" not in customer:
        customer["tier"] = tier
    payload["customer"] = customer
    lines: list[PayloadDict] = []
    for number, raw in enumerate(payload.get("lines") or [], start=1):
        line = dict(raw)
        if "unit_price" not in line and "price" in line:
            line["unit_price"] = line.pop("price")
        line.setdefault("line_no", number)
        lines.append(line)
    payload["lines"] = lines
    payload.setdefault("flags", [])
    return payload
