"""The catalog table, its HTTP API and ``oms catalog``, plus duplicate lookups, on real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import typer
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from services.order import catalog_api, catalog_store, duplicate_store
from services.order.domain.catalog import (
    DEMO_CATALOG,
    CatalogItem,
    CatalogRef,
    parse_catalog,
    parse_catalog_text,
)
from shared.cli import catalog as catalog_cli
from shared.clock import ManualClock
from shared.service import ServiceContext
from shared.settings import OmsSettings

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
HEADER = "sku,name,category,tax_rate,aliases,low_stock_threshold,active\n"
ADMIN, SALES = {"X-API-Key": "demo-admin"}, {"X-API-Key": "demo-sales"}
DIRECTOR = {"X-API-Key": "demo-sales-director"}


@pytest.fixture
async def schema(engine):
    async with engine.begin() as conn:
        await catalog_store.create_schema(conn)
        await duplicate_store.create_schema(conn)
    return engine


async def stored(engine):
    async with engine.connect() as conn:
        return await catalog_store.load_catalog(conn)


async def test_replace_catalog_adds_updates_deactivates_and_never_deletes(schema):
    demo = parse_catalog(DEMO_CATALOG)
    async with schema.begin() as conn:
        first = await catalog_store.replace_catalog(conn, demo, now=NOW)
    assert first == {"added": len(demo), "updated": 0, "unchanged": 0, "deactivated": 0}
    assert (await stored(schema)).items == demo.items

    async with schema.begin() as conn:
        assert await catalog_store.replace_catalog(conn, demo, now=NOW + timedelta(hours=1)) == {
            "added": 0, "updated": 0, "unchanged": len(demo), "deactivated": 0}

    smaller = parse_catalog_text(
        HEADER + "X-100,Purifier X100 (2027),appliances,0.13,X100|XM-X100,25,true\n"
        "OLD-001,Discontinued kettle,appliances,0.13,,0,true\n"
        "NEW-1,New thing,gifts,0.06,NEWTHING,3,true\n")
    later = NOW + timedelta(days=1)
    async with schema.begin() as conn:
        counts = await catalog_store.replace_catalog(conn, smaller, now=later)
    assert counts == {"added": 1, "updated": 2, "unchanged": 0, "deactivated": len(demo) - 2}

    reloaded = await stored(schema)
    assert len(reloaded) == len(demo) + 1  # nothing deleted: orders refer to every SKU ever sold
    assert reloaded.items["X-100"].name == "Purifier X100 (2027)"
    assert reloaded.items["X-100"].low_stock_threshold == 25
    assert reloaded.items["OLD-001"].active  # reactivated
    assert reloaded.resolve("x 200").code == "inactive_sku"
    assert reloaded.lookup("newthing").tax_rate == Decimal("0.06")
    async with schema.connect() as conn:
        rows = {r["sku"]: r for r in await catalog_store.item_rows(conn)}
    assert rows["X-100"]["updated_at"] == later and rows["X-200"]["updated_at"] == later
    assert rows["TEA-500"]["updated_at"] == later


async def test_upsert_item_reports_what_happened(schema):
    item = CatalogItem("X-300", "Purifier X300", "appliances", Decimal("0.13"), ("X300",), 5)
    async with schema.begin() as conn:
        assert await catalog_store.upsert_item(conn, item) == "added"
        assert await catalog_store.upsert_item(conn, item) == "unchanged"
        without_aliases = CatalogItem(**{**item.row(), "aliases": ()})
        assert await catalog_store.upsert_item(conn, without_aliases) == "updated"
    assert (await stored(schema)).items["X-300"].aliases == ()


# ---- HTTP ----------------------------------------------------------------------------------


@pytest.fixture
async def api(schema, database_url):
    async with schema.begin() as conn:
        await catalog_store.replace_catalog(conn, parse_catalog(DEMO_CATALOG), now=NOW)
    app = FastAPI()
    app.include_router(catalog_api.router)
    ctx = ServiceContext("order", OmsSettings(), schema, None, ManualClock(NOW), database_url)
    ctx.state["catalog_ref"] = CatalogRef(await stored(schema))
    app.state.ctx = ctx
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order") as client:
        yield client, ctx.state["catalog_ref"]


async def test_reading_the_catalog_needs_any_valid_key_and_resolves_any_spelling(api):
    client, _ = api
    assert (await client.get("/catalog")).status_code == 401
    listed = (await client.get("/catalog", headers=SALES)).json()
    assert listed["count"] == 7 and listed["items"][0]["tax_rate"] in ("0.13", "0.09")
    assert (await client.get("/catalog?active=false", headers=SALES)).json()["count"] == 1
    for spelling in ("x100", "XM-X100", "Ｘ－１００"):
        found = await client.get(f"/catalog/{spelling}", headers=SALES)
        assert found.status_code == 200 and found.json()["sku"] == "X-100", found.text
    missing = await client.get("/catalog/X-1OO", headers=SALES)
    assert missing.status_code == 404
    assert missing.json()["detail"]["suggestions"][0] == "X-100"
    assert 'did you mean "X-100"' in missing.json()["detail"]["message"]


async def test_put_adds_and_changes_a_sku_and_the_live_catalog_follows(api):
    client, ref = api
    body = {"name": "Purifier X300", "category": "appliances", "tax_rate": "0.13",
            "aliases": ["X300", "xm x300"], "low_stock_threshold": 5}
    assert (await client.put("/catalog/X-300", json=body, headers=SALES)).status_code == 403
    added = await client.put("/catalog/x-300", json=body, headers=DIRECTOR)
    assert added.status_code == 201, added.text
    assert added.json()["result"] == "added" and added.json()["item"]["sku"] == "X-300"
    assert ref.current.resolve("xmx300").item.sku == "X-300"

    changed = await client.put("/catalog/X300", json=body | {"active": False}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["result"] == "updated"
    assert ref.current.resolve("X-300").code == "inactive_sku"
    assert (await client.put("/catalog/X-300", json=body | {"active": False}, headers=ADMIN)
            ).json()["result"] == "unchanged"


@pytest.mark.parametrize(("path", "change", "loc", "kind"), [
    ("X-300", {"aliases": ["X300", "xm-x100"]}, ["body", "aliases", 1], "alias_collision"),
    ("XM-X100", {}, ["path", "sku"], "alias_of_other_sku"),
    ("X-300", {"aliases": ["--"]}, ["body", "aliases", 0], "invalid_alias"),
    ("--", {}, ["path", "sku"], "invalid_sku"),
    ("X-300", {"tax_rate": 0.13}, ["body", "tax_rate"], "value_error"),
    ("X-300", {"tax_rate": "1.5"}, ["body", "tax_rate"], "less_than"),
    ("X-300", {"low_stock_threshold": "5"}, ["body", "low_stock_threshold"], "int_type"),
    ("X-300", {"active": "yes"}, ["body", "active"], "bool_type"),
    ("X-300", {"name": "  "}, ["body", "name"], "string_too_short"),
    ("X-300", {"colour": "red"}, ["body", "colour"], "extra_forbidden"),
])
async def test_put_refuses_bad_input_with_field_reasons(api, path, change, loc, kind):
    client, ref = api
    body = {"name": "Purifier X300", "category": "appliances", "tax_rate": "0.13"} | change
    refused = await client.put(f"/catalog/{path}", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert any(d["loc"] == loc and d["type"] == kind for d in refused.json()["detail"]), refused.json()
    assert "X-300" not in ref.current.items


async def test_import_replaces_the_catalog_for_admins_only(api):
    client, ref = api
    csv_text = (HEADER + "X-100,Xiaomi Air Purifier X100,appliances,0.13,X100|XM-X100,20,true\n"
                "NEW-1,New,gifts,0.06,,1,true\n")
    csv = {"Content-Type": "text/csv"}
    forbidden = await client.post("/catalog/import", content=csv_text, headers=DIRECTOR | csv)
    assert forbidden.status_code == 403
    assert (await client.post("/catalog/import", json={"x": 1}, headers=ADMIN)).status_code == 415
    bad = await client.post("/catalog/import", content=csv_text + "BAD,Bad,c,2,,1,true\n",
                            headers=ADMIN | csv)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["line"] == 4 and bad.json()["detail"][0]["column"] == "tax_rate"
    assert "NEW-1" not in ref.current.items  # a bad file changes nothing

    done = await client.post("/catalog/import", content=csv_text.encode(), headers=ADMIN | csv)
    assert done.status_code == 200, done.text
    assert done.json() | {"skus": 0} == {"added": 1, "updated": 0, "unchanged": 1, "deactivated": 5,
                                         "skus": 0, "active": 2}
    assert ref.current.resolve("new1").item.sku == "NEW-1"
    assert ref.current.resolve("X-200").code == "inactive_sku"


# ---- oms catalog ---------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """oms"""

    catalog_cli.register(app)
    return app


async def invoke(*args, env=None):
    return await asyncio.to_thread(CliRunner().invoke, cli(), list(args), env=env)


async def test_cli_loads_a_file_and_shows_skus(schema, database_url, tmp_path):
    catalog_file = tmp_path / "catalog.csv"
    catalog_file.write_text(DEMO_CATALOG.read_text())
    loaded = await invoke("catalog", "load", str(catalog_file), "--database-url", database_url)
    assert loaded.exit_code == 0, loaded.output
    assert "added 7, updated 0, unchanged 0, deactivated 0" in loaded.output
    assert len(await stored(schema)) == 7

    env = {"OMS_ORDER_DATABASE_URL": database_url}
    again = await invoke("catalog", "load", str(catalog_file), env=env)
    assert "unchanged 7" in again.output
    shown = await invoke("catalog", "show", "xm x100", env=env)
    assert shown.exit_code == 0 and "X-100" in shown.output and "X-200" not in shown.output
    everything = await invoke("catalog", "show", env=env)
    assert everything.exit_code == 0 and "OLD-001" in everything.output
    unknown = await invoke("catalog", "show", "X-1OO", env=env)
    assert unknown.exit_code == 1 and "X-100" in unknown.output


async def test_cli_refuses_a_bad_file_before_touching_the_database(schema, database_url, tmp_path):
    catalog_file = tmp_path / "bad.csv"
    catalog_file.write_text(HEADER + "A-1,A,c,0.13,SHARED,1,true\nB-1,B,c,zero,SHARED,1,true\n")
    result = await invoke("catalog", "load", str(catalog_file), "--database-url", database_url)
    assert result.exit_code == 2
    assert f"{catalog_file}:3: tax_rate:" in result.output
    assert len(await stored(schema)) == 0


async def test_cli_without_a_database_says_how_to_name_one(tmp_path):
    catalog_file = tmp_path / "catalog.csv"
    catalog_file.write_text(DEMO_CATALOG.read_text())
    result = await invoke("catalog", "load", str(catalog_file),
                          env={"OMS_DATABASE_URL": None, "OMS_ORDER_DATABASE_URL": None})
    assert result.exit_code == 2 and "--database-url" in result.output


# ---- duplicates ----------------------------------------------------------------------------


async def test_find_likely_duplicates_within_the_window_excluding_the_order_itself(schema):
    window = timedelta(minutes=30)
    async with schema.begin() as conn:
        for order_id, channel, minutes, mark in [
                ("O-tmall", "tmall", 0, "fp-a"), ("O-jd", "jd", 20, "fp-a"),
                ("O-old", "pdd", -45, "fp-a"), ("O-other", "web", 5, "fp-b")]:
            await duplicate_store.record(conn, order_id, mark, channel, f"{channel}-1",
                                         NOW + timedelta(minutes=minutes))
        await duplicate_store.record(conn, "O-jd", "fp-a", "jd", "jd-1", NOW + timedelta(minutes=20))
        found = await duplicate_store.find_likely_duplicates(conn, "fp-a", NOW + timedelta(minutes=25),
                                                             window, "O-new")
        assert [(s.order_id, s.channel) for s in found] == [("O-tmall", "tmall"), ("O-jd", "jd")]
        assert found[0].submitted_at == NOW
        mine = await duplicate_store.find_likely_duplicates(conn, "fp-a", NOW + timedelta(minutes=20),
                                                            window, "O-jd")
        assert [s.order_id for s in mine] == ["O-tmall"]
        earlier = await duplicate_store.find_likely_duplicates(conn, "fp-a", NOW - timedelta(minutes=31),
                                                               window, "O-new")
        assert [s.order_id for s in earlier] == ["O-old"]
        assert await duplicate_store.find_likely_duplicates(conn, "fp-c", NOW, window, "O-new") == []
        await duplicate_store.forget(conn, "O-tmall")
        rows = (await conn.execute(select(duplicate_store.order_fingerprints.c.order_id))).scalars().all()
    assert sorted(rows) == ["O-jd", "O-old", "O-other"]
