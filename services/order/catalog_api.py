"""HTTP for the product catalog: look SKUs up by any spelling, change one SKU, import a whole file.

Every write reloads the running service's live catalog (``ctx.state["catalog_ref"]``), so the
next storefront message is validated against it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.order import catalog_store
from services.order.domain.catalog import (
    MAX_THRESHOLD,
    Catalog,
    CatalogError,
    CatalogItem,
    CatalogRef,
    parse_catalog_text,
)
from shared.auth import Principal, current_principal, require_roles
from shared.contract.sku import canonical_sku, match_key
from shared.logging import get_logger
from shared.service import ServiceContext, context

log = get_logger(__name__)
router = APIRouter(tags=["catalog"])
MAX_IMPORT_BYTES = 5 * 1024 * 1024
Sku = Annotated[str, Path(min_length=1, max_length=64)]


class CatalogItemBody(BaseModel):
    """One SKU as a person sends it (the SKU itself is in the path)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    category: str = Field(default="", max_length=64)
    tax_rate: Decimal = Field(ge=0, lt=1, decimal_places=4, description='a decimal string, e.g. "0.13"')
    aliases: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list,
                                                                             max_length=50)
    low_stock_threshold: int = Field(default=0, ge=0, le=MAX_THRESHOLD, strict=True)
    active: bool = Field(default=True, strict=True)

    @field_validator("tax_rate", mode="before")
    @classmethod
    def _rate_as_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f'{value!r} is not a decimal string; send e.g. "0.13"')
        return value


def _ref(ctx: ServiceContext) -> CatalogRef:
    ref = ctx.state.get("catalog_ref")
    if not isinstance(ref, CatalogRef):
        ref = ctx.state["catalog_ref"] = CatalogRef()
    return ref


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {"sku": row["sku"], "name": row["name"], "category": row["category"],
            "tax_rate": str(Decimal(row["tax_rate"]).normalize() if row["tax_rate"] else Decimal(0)),
            "aliases": list(row["aliases"]), "low_stock_threshold": row["low_stock_threshold"],
            "active": row["active"],
            "updated_at": row["updated_at"].isoformat() if row.get("updated_at") else None}


def _unprocessable(*problems: tuple[list[str | int], str, str]) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "type": code, "msg": msg} for loc, code, msg in problems])


def _aliases(spellings: list[str], target: str, catalog: Catalog
             ) -> tuple[tuple[str, ...], list[tuple[list[str | int], str, str]]]:
    """The new aliases (one per match key, the SKU's own spelling dropped) and why any is refused."""
    kept: dict[str, str] = {}
    problems: list[tuple[list[str | int], str, str]] = []
    for index, alias in enumerate(spellings):
        key, owner = match_key(alias), catalog.lookup(alias)
        if not key:
            problems.append((["body", "aliases", index], "invalid_alias",
                             f"{alias!r} is not a SKU spelling; accepted: letters and digits"))
        elif owner is not None and owner.sku != target and owner.active:
            problems.append((["body", "aliases", index], "alias_collision",
                             f'"{alias}" already means {owner.sku}; accepted: a spelling no other '
                             "active SKU uses"))
        elif key != match_key(target):
            kept.setdefault(key, alias)
    return tuple(kept.values()), problems


@router.get("/catalog")
async def list_catalog(active: bool | None = None, ctx: ServiceContext = Depends(context),
                       _: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Every SKU (``?active=true`` for those on sale), discontinued ones included by default."""
    async with ctx.engine.connect() as conn:
        rows = await catalog_store.item_rows(conn, active=active)
    return {"items": [_view(row) for row in rows], "count": len(rows)}


@router.get("/catalog/{sku}")
async def get_catalog_item(sku: Sku, ctx: ServiceContext = Depends(context),
                           _: Principal = Depends(current_principal)) -> dict[str, Any]:
    """One SKU by any spelling (``x100``, ``XM-X100``, ``Ｘ－１００``); 404 names the nearest SKUs."""
    async with ctx.engine.connect() as conn:
        catalog = await catalog_store.load_catalog(conn)
        item = catalog.lookup(sku)
        if item is None:
            suggestions = list(catalog.suggestions(sku))
            hint = f' (did you mean "{suggestions[0]}"?)' if suggestions else ""
            raise HTTPException(404, {"message": f"unknown SKU {sku!r}{hint}", "suggestions": suggestions})
        (row,) = await catalog_store.item_rows(conn, skus=[item.sku])
    return {**_view(row), "requested": sku}


@router.put("/catalog/{sku}")
async def put_catalog_item(sku: Sku, body: CatalogItemBody, ctx: ServiceContext = Depends(context),
                           principal: Principal = Depends(require_roles("sales_director"))
                           ) -> JSONResponse:
    """Add or change one SKU (admin, sales_director). Aliases may not mean another active SKU."""
    ref = _ref(ctx)
    async with ctx.engine.begin() as conn:
        await catalog_store.lock_catalog(conn)
        catalog = await catalog_store.load_catalog(conn)
        existing = catalog.lookup(sku)
        if existing is not None and match_key(existing.sku) != match_key(sku):
            raise _unprocessable((["path", "sku"], "alias_of_other_sku",
                                  f"{sku!r} is an alias of {existing.sku}; accepted: "
                                  f"PUT /catalog/{existing.sku} to change that SKU, or a new SKU"))
        target = existing.sku if existing is not None else canonical_sku(sku)
        if not match_key(target):
            raise _unprocessable((["path", "sku"], "invalid_sku",
                                  f"{sku!r} is not a SKU; accepted: letters and digits, e.g. X-100"))
        aliases, problems = _aliases(body.aliases, target, catalog)
        item = CatalogItem(target, body.name, body.category, body.tax_rate, aliases,
                           body.low_stock_threshold, body.active)
        if problems:
            raise _unprocessable(*problems)
        result = await catalog_store.upsert_item(conn, item, now=ctx.clock.now())
        fresh = await catalog_store.load_catalog(conn)
        (row,) = await catalog_store.item_rows(conn, skus=[target])
    ref.current = fresh
    log.info("catalog item written", sku=target, result=result, by=principal.user)
    return JSONResponse({"result": result, "item": _view(row)}, status_code=201 if result == "added" else 200)


@router.post("/catalog/import", openapi_extra={"requestBody": {
    "required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_catalog(request: Request, ctx: ServiceContext = Depends(context),
                         principal: Principal = Depends(require_roles("admin"))) -> dict[str, Any]:
    """Replace the catalog with a CSV file (admin): SKUs missing from it become inactive."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("text/csv", "text/plain"):
        raise HTTPException(415, f"send the catalog file as text/csv, not {media or 'no content type'}")
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"the file is {len(raw)} bytes; accepted: at most {MAX_IMPORT_BYTES}")
    try:
        catalog = parse_catalog_text(raw.decode("utf-8"), source="upload")
    except UnicodeDecodeError:
        raise _unprocessable((["body"], "not_utf8", "the file is not UTF-8 text")) from None
    except CatalogError as error:
        raise HTTPException(422, [{"loc": ["body", "line", p.line or 0] + ([p.column] if p.column else []),
                                   "line": p.line, "column": p.column, "type": "catalog_file",
                                   "msg": p.message} for p in error.problems]) from None
    ref = _ref(ctx)
    async with ctx.engine.begin() as conn:
        counts = await catalog_store.replace_catalog(conn, catalog, now=ctx.clock.now())
        fresh = await catalog_store.load_catalog(conn)
    ref.current = fresh
    log.info("catalog imported", by=principal.user, **counts)
    return {**counts, "skus": len(fresh), "active": sum(i.active for i in fresh.items.values())}
