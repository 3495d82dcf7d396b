"""Likely cross-channel duplicates: the same phone and the same goods within a short window.

A shopper who gets no answer from one storefront often orders again in another (or again in the
same one under a new order number). Such an order is still placed, but flagged
``possible_duplicate_of:<order_id>`` so a person can call before both ship.
The goods compare as canonical SKU -> total quantity, so line order, line splitting and SKU
spelling do not matter, while a different quantity makes a different order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.order.domain.contact import normalise_phone
from shared.contract.payloads import OrderLine
from shared.contract.sku import match_key

DEFAULT_WINDOW = timedelta(minutes=30)
FLAG_PREFIX = "possible_duplicate_of:"
_VERSION = "fp1"  # bump when the recipe changes, so old and new fingerprints never match


def fingerprint(phone: str | None, lines: Sequence[OrderLine]) -> str | None:
    """A stable digest of (phone digits, goods); None when there is no usable phone."""
    return _fingerprint(phone, ((line.sku, line.quantity) for line in lines))


def _fingerprint(phone: str | None, goods: Iterable[tuple[str, int]]) -> str | None:
    digits = normalise_phone(phone) if phone else ""
    if not digits:
        return None
    totals: Counter[str] = Counter()
    for sku, quantity in goods:
        totals[match_key(sku)] += quantity
    recipe = ";".join(f"{sku}x{quantity}" for sku, quantity in sorted(totals.items()))
    return f"{_VERSION}:" + hashlib.sha256(f"{digits}|{recipe}".encode()).hexdigest()


def likely_mark(raw: Any) -> tuple[str, datetime] | None:
    """The fingerprint and instant a storefront submission will most likely have once validated
    (its lines as sent), so a batch can read the candidates of all its submissions at once; None
    when the message is not a submission that could have one. Only a guess: validation may still
    refuse the message or map a SKU differently (then the order's own mark is looked up alone)."""
    if not isinstance(raw, dict) or raw.get("type") != "order.submitted":
        return None
    customer, lines, at = raw.get("customer"), raw.get("lines"), raw.get("submitted_at")
    if not isinstance(customer, dict) or not isinstance(lines, list) or not isinstance(at, str):
        return None
    phone = customer.get("phone")
    goods: list[tuple[str, int]] = []
    for line in lines:
        if not isinstance(line, dict):
            return None
        sku, quantity = line.get("sku"), line.get("quantity")
        if not isinstance(sku, str) or not isinstance(quantity, int) or isinstance(quantity, bool):
            return None
        goods.append((sku, quantity))
    try:
        instant = datetime.fromisoformat(at)
    except ValueError:
        return None
    mark = _fingerprint(phone if isinstance(phone, str) else None, goods)
    if mark is None or instant.tzinfo is None:
        return None
    return mark, instant


@dataclass(frozen=True, slots=True)
class DuplicateSuspicion:
    """An earlier (or concurrent) order that looks like the same purchase."""

    order_id: str
    channel: str
    channel_order_id: str
    submitted_at: datetime

    @property
    def flag(self) -> str:
        return flag_for(self.order_id)


def flag_for(order_id: str) -> str:
    """The ``order.placed`` flag naming the order this one probably repeats."""
    return f"{FLAG_PREFIX}{order_id}"


def likely_duplicates(candidates: Iterable[DuplicateSuspicion], *, submitted_at: datetime,
                      window: timedelta, exclude_order_id: str,
                      channel: str | None = None, channel_order_id: str | None = None
                      ) -> list[DuplicateSuspicion]:
    """Same-fingerprint candidates submitted within ``window`` either side, from another order.

    Either side: storefronts deliver out of order, so the "first" order may arrive second.
    """
    return sorted(
        (c for c in candidates
         if c.order_id != exclude_order_id
         and (c.channel, c.channel_order_id) != (channel, channel_order_id)
         and abs(c.submitted_at - submitted_at) <= window),
        key=lambda c: (c.submitted_at, c.order_id),
    )
