"""A SKU typed at a receipt is the catalog's or one inventory keeps, however it is spelt."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.inventory.catalog import DEMO_CATALOG, load_names
from services.inventory.skus import AmbiguousSku, resolve

CATALOG = load_names(DEMO_CATALOG)


@pytest.mark.parametrize("typed", ["X-200", "x200", "X 200", " x-200 ", "Ｘ－２００", "x_200"])
def test_spellings_of_a_catalog_sku_are_that_sku(typed: str) -> None:
    assert resolve(typed, CATALOG, []) == "X-200"


def test_an_alias_is_its_catalog_sku() -> None:
    assert resolve("xm-x100", CATALOG, []) == resolve("XMX100", CATALOG, []) == "X-100"
    assert resolve("lj tea 500", CATALOG, []) == "TEA-500"


def test_a_sku_the_catalog_lacks_is_the_one_kept_or_new() -> None:
    assert resolve("zz 9", CATALOG, ["ZZ-9", "OTHER"]) == "ZZ-9"
    assert resolve("zz-10", CATALOG, ["ZZ-9"]) == "ZZ-10"  # new: written as typed
    assert resolve("ZZ9", CATALOG, ["ZZ-9", "ZZ9"]) == "ZZ9"  # typed exactly as kept
    with pytest.raises(AmbiguousSku, match="ZZ-9, ZZ9"):
        resolve("zz 9", CATALOG, ["ZZ-9", "ZZ9"])


def test_the_catalog_file_names_skip_rows_without_a_sku(tmp_path: Path) -> None:
    file = tmp_path / "catalog.csv"
    file.write_text("sku,name,category,tax_rate,aliases\n"
                    "ab-1,A,c,0.13,ab one|\n"
                    ",B,c,0.13,orphan\n", encoding="utf-8")
    assert load_names(file) == {"AB1": "AB-1", "ABONE": "AB-1"}
