"""The operator commands find a service where the running ``oms run`` recorded it, and go to the
next instance only when one refuses the connection (``shared/cli/http.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import typer
from rich.console import Console

from shared.cli.http import base_url, checked, send


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An ``oms run --scale billing=3 --free-ports`` on this data directory: its endpoints."""
    urls = ["http://127.0.0.1:41001", "http://127.0.0.1:41002", "http://127.0.0.1:41003"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "endpoints.json").write_text(json.dumps({
        "services": {"billing": {"url": urls[0]}}, "instances": {"billing": urls}}))
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OMS_BILLING_URL", raising=False)
    return urls


def serving(monkeypatch: pytest.MonkeyPatch, up: set[str]) -> list[str]:
    tried: list[str] = []

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        tried.append(url)
        if not any(url.startswith(base) for base in up):
            raise httpx.ConnectError("refused")
        return httpx.Response(201, json={"at": url})

    monkeypatch.setattr(httpx, "request", request)
    return tried


def test_the_first_instance_that_takes_the_connection_answers(recorded, monkeypatch) -> None:
    tried = serving(monkeypatch, up={recorded[1], recorded[2]})
    assert base_url("billing") == recorded[0]
    answer = send("billing", "POST", "/payments", "k", console=Console(), json={})
    assert answer.json() == {"at": f"{recorded[1]}/payments"}
    assert tried == [f"{recorded[0]}/payments", f"{recorded[1]}/payments"]  # sent once only


def test_no_instance_answering_names_every_address(recorded, monkeypatch) -> None:
    serving(monkeypatch, up=set())
    console = Console(record=True, width=300)
    with pytest.raises(typer.Exit) as ended:
        send("billing", "GET", "/invoices", "k", console=console)
    assert ended.value.exit_code == 2
    assert ", ".join(recorded) in console.export_text()


def test_an_explicit_url_wins_over_the_recorded_instances(recorded, monkeypatch) -> None:
    monkeypatch.setenv("OMS_BILLING_URL", "http://billing.example:9/")
    assert base_url("billing") == "http://billing.example:9"


def test_errors_print_the_services_detail_and_exit_1() -> None:
    console = Console(record=True, width=200)
    ok = httpx.Response(200, json={})
    assert checked(ok, console) is ok
    for response, shown in ((httpx.Response(404, json={"detail": "no such order O-1"}),
                             "no such order O-1"),
                            (httpx.Response(422, text="amount: not a number"),
                             "422 amount: not a number")):
        with pytest.raises(typer.Exit) as ended:
            checked(response, console)
        assert ended.value.exit_code == 1 and shown in console.export_text()
