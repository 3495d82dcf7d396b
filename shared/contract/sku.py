"""A SKU's two forms, the same in every service: "x100", "X 100" and "Ｘ－１００" all mean "X-100".

``match_key`` is how SKUs are compared (the order service's catalog and its aliases, inventory's
receipts typed by people); ``canonical_sku`` is how a SKU no catalog entry owns is written down.
"""

from __future__ import annotations

import unicodedata

SEPARATORS = str.maketrans("", "", " -_./\u00b7\u2010\u2011\u2012\u2013\u2014\u2212\u30fc")


def match_key(sku: str) -> str:
    """The comparison form of a SKU: NFKC (full-width to ASCII), upper case, no separators."""
    return unicodedata.normalize("NFKC", sku).upper().translate(SEPARATORS)


def canonical_sku(sku: str) -> str:
    """How a new SKU is stored: NFKC, trimmed, upper case (``x-300`` -> ``X-300``)."""
    return unicodedata.normalize("NFKC", sku).strip().upper()
