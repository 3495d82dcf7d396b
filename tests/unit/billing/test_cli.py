"""``oms billing`` commands: which URL they call with which key, and what they print or write."""

from __future__ import annotations

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from shared.cli import billing

INVOICE = {"voucher_number": "INV-2026-000001", "kind": "full", "order_id": "O-1",
           "issued_at": "2026-11-21T08:00:00+00:00", "due_date": "2026-11-21", "currency": "CNY",
           "total": "395.00", "paid_total": "0.00", "outstanding": "395.00", "status": "open",
           "lines": [{"line_no": 1, "kind": "goods", "description": "phone", "sku": "X-100",
                      "quantity": 2, "gross": "398.00", "net": "352.21", "tax_rate": "0.13",
                      "tax": "45.79"}],
           "payments": [{"payment_id": "P-1", "method": "alipay", "amount": "1.00"}],
           "credit_notes": []}


@pytest.fixture
def calls(monkeypatch):
    """Answer the CLI's HTTP calls from a table instead of a running service."""
    seen: list[tuple[str, str, dict]] = []
    answers = {
        "/invoices": [INVOICE], "/invoices/INV-2026-000001": INVOICE,
        "/receivables": {"as_of": "2027-01-05", "buckets": ["current", "1-30", "31-60", "61-90",
                                                             "90+"],
                         "counts": {}, "totals": {"CNY": {"current": "0.00", "1-30": "1.00",
                                                          "31-60": "0.00", "61-90": "0.00",
                                                          "90+": "0.00", "total": "1.00"}},
                         "invoices": [INVOICE | {"days_past_due": 15, "bucket": "1-30"}]},
        "/payments": [], "/credit-notes": [], "/refunds": [],
        "/invoices/export.csv": "voucher,order_id\nINV-2026-000001,O-1\n",
        "/nope": None,
    }

    def fake(method, url, *, headers, timeout, **kwargs):
        path = url.removeprefix("http://billing.test")
        seen.append((method, url, {"headers": headers, **kwargs}))
        body = answers.get(path)
        if path.startswith("/down"):
            raise httpx.ConnectError("refused")
        if body is None:
            return httpx.Response(404, json={"detail": "not found"})
        if isinstance(body, str):
            return httpx.Response(200, text=body)
        return httpx.Response(201 if method == "POST" else 200, json=body)

    monkeypatch.setenv("OMS_BILLING_URL", "http://billing.test")
    monkeypatch.setattr(billing.httpx, "request", fake)
    monkeypatch.setattr(billing, "console", Console(width=250))
    return seen


def run(*args: str):
    app = typer.Typer()
    billing.register(app)

    @app.callback()
    def main() -> None:
        """oms"""

    return CliRunner().invoke(app, ["billing", *args])


def test_the_url_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("OMS_BILLING_URL", raising=False)
    monkeypatch.setenv("OMS_BILLING_HTTP_PORT", "9999")
    assert billing.billing_url() == "http://127.0.0.1:9999"
    monkeypatch.setenv("OMS_BILLING_URL", "http://elsewhere:1/")
    assert billing.billing_url() == "http://elsewhere:1"


def test_invoices_of_an_order_and_one_invoice(calls):
    result = run("invoices", "O-1")
    assert result.exit_code == 0, result.output
    assert "INV-2026-000001" in result.output
    method, url, extra = calls[-1]
    assert (method, url, extra["params"]) == ("GET", "http://billing.test/invoices",
                                              {"order_id": "O-1"})
    assert extra["headers"] == {"X-API-Key": "demo-finance"}
    result = run("invoice", "INV-2026-000001", "--api-key", "demo-admin")
    assert result.exit_code == 0, result.output
    assert "payments allocated" in result.output and "X-100" in result.output
    assert calls[-1][2]["headers"] == {"X-API-Key": "demo-admin"}


def test_receivables_payments_and_credit_notes(calls):
    assert run("receivables", "--as-of", "2027-01-05").exit_code == 0
    assert calls[-1][2]["params"] == {"as_of": "2027-01-05"}
    assert run("payments", "--order", "O-1").exit_code == 0
    assert calls[-1][2]["params"] == {"order_id": "O-1"}
    assert run("credit-notes").exit_code == 0
    assert calls[-1][2]["params"] == {}
    assert run("refunds", "--order", "O-1").exit_code == 0


def test_pay_posts_a_payment(calls):
    result = run("pay", "O-1", "BT-1", "100.00")
    assert result.exit_code == 0, result.output
    method, url, extra = calls[-1]
    assert (method, url) == ("POST", "http://billing.test/payments")
    assert extra["json"] == {"order_id": "O-1", "payment_id": "BT-1", "method": "bank_transfer",
                             "amount": "100.00", "currency": "CNY"}


def test_export_writes_the_csv(calls, tmp_path):
    target = tmp_path / "invoices.csv"
    result = run("export", "--from", "2026-11-01", "--to", "2026-11-30", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text() == "voucher,order_id\nINV-2026-000001,O-1\n"
    assert calls[-1][2]["params"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert "1 invoice(s)" in result.output
    assert run("export", "--from", "November", "--to", "2026-11-30", str(target)).exit_code == 2


def test_errors_exit_non_zero(calls, monkeypatch):
    assert run("invoice", "INV-2026-999999").exit_code == 1
    monkeypatch.setenv("OMS_BILLING_URL", "http://billing.test/down")
    result = run("invoices", "O-1")
    assert result.exit_code == 2 and "cannot reach" in result.output
