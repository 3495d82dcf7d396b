"""``oms stock``: each command sends the request the inventory API expects and prints the answer."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from shared.cli import stock

runner = CliRunner()


@pytest.fixture
def sent(monkeypatch):
    """Requests the CLI makes, answered by a canned inventory service."""
    calls: list[tuple[str, str, dict]] = []
    answers = {
        "/warehouses": [{"code": "WH-A", "priority": 1, "created_at": "2026-11-21T08:00:00+00:00"}],
        "/backorders": [{"position": 1, "order_id": "O-1", "kind": "order",
                         "wanted": [{"sku": "X-100", "quantity": 2}],
                         "short_since": "2026-11-21T08:00:00+00:00"}],
        "/stock/X-100/ledger": {"sku": "X-100", "entries": [
            {"entry_id": 7, "recorded_at": "t", "warehouse": "WH-A", "kind": "adjusted",
             "quantity": -2, "order_id": None, "reason": "broken", "actor": "user:wang"}]},
    }

    def request(method, url, **kwargs):
        path = url.removeprefix(stock.inventory_url())
        calls.append((method, path, kwargs))
        return httpx.Response(200, json=answers.get(path, kwargs.get("json") or {}))

    monkeypatch.setattr(httpx, "request", request)  # what shared/cli/http.py sends with
    return calls


def run(*args):
    from shared.cli.main import app
    return runner.invoke(app, ["stock", *args])


def test_adjust_sends_a_signed_quantity_and_its_reason(sent):
    result = run("adjust", "X-100", "WH-A", "-2", "--reason", "broken in transit")
    assert result.exit_code == 0, result.output
    assert sent == [("POST", "/stock/adjustments", {"headers": {"X-API-Key": "demo-warehouse"},
                                                     "timeout": 30, "json": {
        "sku": "X-100", "warehouse": "WH-A", "quantity": -2, "reason": "broken in transit"}})]


def test_adjust_refuses_zero_and_a_missing_reason_before_calling(sent):
    assert run("adjust", "X-100", "WH-A", "0", "--reason", "x").exit_code == 2
    assert run("adjust", "X-100", "WH-A", "3").exit_code == 2
    assert sent == []


def test_ledger_warehouses_priority_and_backorders(sent):
    assert "broken" in run("ledger", "X-100").output
    assert "WH-A" in run("warehouses").output
    assert run("priority", "WH-A", "3").exit_code == 0
    assert "X-100 x2" in run("backorders").output
    assert [(m, p) for m, p, _ in sent] == [
        ("GET", "/stock/X-100/ledger"), ("GET", "/warehouses"), ("PUT", "/warehouses/WH-A/priority"),
        ("GET", "/backorders")]
    assert sent[2][2]["json"] == {"priority": 3}
