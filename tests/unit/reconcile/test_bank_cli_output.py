"""`oms bank import` says what happened even for a statement too big to list or to answer in
time: the first unmatched lines and how many more, and a timeout explained, not a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shared.cli import bank as bank_cli


def oms() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    bank_cli.register(app)
    return app


def answer(unmatched: int) -> dict[str, Any]:
    decisions = [{"transaction_id": f"TX-{n}", "line": n + 2, "matched": False, "rule": "none",
                  "flagged": False, "reason": "no open invoice"} for n in range(unmatched)]
    return {"rows_read": unmatched, "imported": unmatched, "already_imported": 0, "refused": 0,
            "matched": 0, "flagged": 0, "unmatched": unmatched, "window_days": 7,
            "tolerance": "5.00", "errors": [], "decisions": decisions}


def test_a_big_statement_lists_the_first_unmatched_lines_and_counts_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bank_cli, "_request", lambda *args, **kwargs: answer(25))
    file = tmp_path / "s.csv"
    file.write_text("transaction_id,booked_at,amount,currency\n")
    result = CliRunner().invoke(oms(), ["bank", "import", str(file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "TX-19:" in said and "TX-20:" not in said
    assert "... and 5 more unmatched or flagged" in said
    every = CliRunner().invoke(oms(), ["bank", "import", str(file), "--show", "100"],
                               env={"COLUMNS": "200"})
    assert "TX-24:" in every.output and "more unmatched" not in every.output


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_no_answer_in_time_is_explained(silent_server: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bank_cli, "IMPORT_SECONDS", 0.5)
    file = tmp_path / "s.csv"
    file.write_text("transaction_id,booked_at,amount,currency\n")
    result = CliRunner().invoke(oms(), ["bank", "import", str(file)],
                                env={"OMS_RECONCILE_URL": silent_server, "COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "no answer from the reconcile service within 0.5 s" in said
    assert "importing the same file again is safe" in said


def test_bank_lines_says_what_finance_can_do_with_the_lines_waiting_for_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Billing books matched lines by itself but not flagged ones: `oms bank lines` prints how to
    confirm or undo each flagged match, and how to match each unmatched money-in line by hand."""
    def line(txn: str, status: str, flagged: bool, amount: str,
             candidates: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"transaction_id": txn, "booked_on": "2026-11-21", "amount": amount,
                "currency": "CNY", "status": status, "flagged": flagged, "rule": "reference",
                "score": "0.90", "difference": "-5.00" if flagged else "0.00",
                "candidates": list(candidates),
                "allocations": [{"voucher_number": f"INV-{txn}", "order_id": f"O-{txn}",
                                 "applied": amount}] if status == "matched" else [],
                "reason": "partial payment"}

    body = {"count": 5, "lines": [line("T1", "matched", False, "395.00"),
                                  line("T2", "matched", True, "390.00"),
                                  line("T3", "unmatched", True, "395.00", ("INV-A", "INV-B")),
                                  line("T4", "unmatched", False, "50.00", ("INV-C",)),
                                  line("T5", "unmatched", False, "-20.00")]}
    monkeypatch.setattr(bank_cli, "_request", lambda *args, **kwargs: body)
    result = CliRunner().invoke(oms(), ["bank", "lines"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    said = [" ".join(row.split()) for row in result.output.splitlines()]
    assert "oms bank confirm T2 | oms bank unmatch T2 --note WHY" in said
    assert "oms bank match T3 VOUCHER (candidates: INV-A, INV-B)" in said
    assert "oms bank match T4 INV-C" in said
    assert not any("T1" in row and "oms bank" in row for row in said)  # billing booked it
    assert not any("T5" in row and "oms bank" in row for row in said)  # money out


def test_bank_match_reads_vouchers_and_amounts(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[Any, ...]] = []

    def request(method: str, path: str, api_key: str, **kwargs: Any) -> dict[str, Any]:
        sent.append((method, path, kwargs["json"]))
        return {"transaction_id": "T 1", "amount": "400.00", "currency": "CNY",
                "status": "matched", "rule": "manual", "flagged": False, "difference": "0.00",
                "reason": "matched by hand by fei.finance", "billing_books": True,
                "allocations": [{"voucher_number": "INV-1", "order_id": "O-1", "applied": "395.00",
                                 "payment_id": "bank:T 1:INV-1"},
                                {"voucher_number": "INV-2", "order_id": "O-2", "applied": "5.00",
                                 "payment_id": "bank:T 1:INV-2"}]}

    monkeypatch.setattr(bank_cli, "_request", request)
    result = CliRunner().invoke(oms(), ["bank", "match", "T 1", "INV-1", "INV-2=5.00",
                                        "--note", "phoned"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert sent == [("POST", "/bank/lines/T%201/match", {
        "invoices": [{"voucher_number": "INV-1"}, {"voucher_number": "INV-2", "amount": "5.00"}],
        "note": "phoned"})]
    assert "billing books bank:T 1:INV-1, bank:T 1:INV-2" in " ".join(result.output.split())
    bad = CliRunner().invoke(oms(), ["bank", "match", "T1", "INV-1="])
    assert bad.exit_code == 2 and "VOUCHER=AMOUNT" in bad.output
    no_note = CliRunner().invoke(oms(), ["bank", "unmatch", "T1"])
    assert no_note.exit_code == 2 and "--note" in no_note.output
