"""``oms notify check`` and ``oms notify fields`` without a server."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from shared.cli.notify import register

app = typer.Typer()
register(app)


@app.callback()
def main() -> None:
    """Test root."""


def test_check_lists_the_rules_and_what_falls_back_to_the_inbox(monkeypatch):
    monkeypatch.delenv("OMS_SMTP_HOST", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, ["notify", "check"])
    assert result.exit_code == 0, result.output
    assert "10 rules OK" in result.output
    assert "email is not set up (OMS_SMTP_HOST unset)" in result.output


def test_check_refuses_a_bad_file_saying_where(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\nevent = "order.paid"\nrecipients = ["boss"]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["notify", "check", str(bad)])
    assert result.exit_code == 1
    assert "rule #1 (x): key 'recipients': 'boss' is not a recipient" in " ".join(result.output.split())


def test_fields_shows_what_staff_may_not_use(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["notify", "fields"])
    assert result.exit_code == 0, result.output
    assert "tracking_number" in result.output
