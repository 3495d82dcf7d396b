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

from services.order.domain.catalog import match_key
from services.order.domain.contact import normalise_phone
from shared.contract.payloads import OrderLine

DEFAULT_WINDOW = timedelta(minutes=30)
FLAG_PREFIX = "possible_duplicate_of:"
_VERSION = "fp1"  # bump when the recipe changes, so old and new fingerprints never match


def fingerprint(phone: str | None, lines: Sequence[OrderLine]) -> str | None:
    """A stable digest of (phone digits, goods); None when there is no usable phone."""
    digits = normalise_phone(phone) if phone else ""
    if not digits:
        return None
    goods: Counter[str] = Counter()
    for line in lines:
        goods[match_key(line.sku)] += line.quantity
    recipe = ";".join(f"{sku}x{quantity}" for sku, quantity in sorted(goods.items()))
    return f"{_VERSION}:" + hashlib.sha256(f"{digits}|{recipe}".encode()).hexdigest()


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
