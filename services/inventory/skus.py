"""The SKU a person typed at a receipt, an adjustment or a lookup, as inventory keeps it.

Storefront orders reach inventory with the catalog's SKUs (``X-200``: the order service resolved
"x200" and "X 200" through the catalog). A warehouse clerk typing "X 200" or "x200" means that
product too; stock received under the typed spelling would be a second product no order ever
asks for, while the order waiting for it stays backordered. So a typed SKU is compared as the
order service compares them (``shared.contract.sku.match_key``) with the catalog's SKUs and
aliases, then with the SKUs inventory already keeps (stock, backorders); only a SKU neither knows
is new (stock may come before the catalog entry), written as typed (``canonical_sku``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contract.sku import canonical_sku, match_key


class AmbiguousSku(ValueError):
    """Two SKUs inventory keeps are written alike: the person must type one exactly."""


def resolve(typed: str, catalog: Mapping[str, str], kept: Iterable[str]) -> str:
    """The catalog's SKU for ``typed`` (by its SKUs and aliases), else the one kept SKU written
    like it, else ``typed`` as a new SKU. ``typed`` exactly as kept always stands for itself."""
    exact, key = canonical_sku(typed), match_key(typed)
    if key in catalog:
        return catalog[key]
    alike = sorted({sku for sku in kept if match_key(sku) == key})
    if exact in alike or not alike:
        return exact
    if len(alike) == 1:
        return alike[0]
    raise AmbiguousSku(f"SKU {typed!r} could be any of {', '.join(alike)}: type one of them exactly")


_KEPT = text("SELECT sku FROM stock_balances UNION SELECT unnest(skus) FROM backorders")


async def kept_skus(conn: AsyncConnection) -> list[str]:
    """Every SKU inventory has stock rows or waiting orders for."""
    return [row[0] for row in await conn.execute(_KEPT)]


async def resolve_typed(conn: AsyncConnection, typed: str, catalog: Mapping[str, str]) -> str:
    """``resolve``, reading the kept SKUs only when the catalog does not know the SKU."""
    found = catalog.get(match_key(typed))
    return found if found is not None else resolve(typed, catalog, await kept_skus(conn))
