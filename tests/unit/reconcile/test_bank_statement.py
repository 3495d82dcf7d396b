"""Reading bank statement CSV files: the standard columns and the ICBC-style export."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.reconcile.bank.statement import StatementError, parse_statement

STANDARD = (
    "transaction_id,booked_at,amount,currency,counterparty,memo\n"
    "T-1,2026-11-21,395.00,CNY,王芳,payment O-ABCDEF0123456789\n"
    "T-2,2026-11-21T10:15:00+08:00,-12.50,cny,Bank,fee\n"
)


def test_standard_rows_are_read():
    statement = parse_statement(STANDARD.encode())
    assert statement.errors == ()
    first, second = statement.lines
    assert (first.transaction_id, first.booked_on, first.amount, first.currency) == (
        "T-1", date(2026, 11, 21), Decimal("395.00"), "CNY")
    assert (first.counterparty, first.memo, first.line) == ("王芳", "payment O-ABCDEF0123456789", 2)
    assert (second.amount, second.currency, second.line) == (Decimal("-12.50"), "CNY", 3)


def test_utf8_with_bom_and_column_order_free():
    text = "\ufeffMemo,Amount,Currency,Booked_At,Transaction_ID\nref,1.5,CNY,2026-11-20,T-9\n"
    (line,) = parse_statement(text.encode("utf-8")).lines
    assert (line.transaction_id, line.amount, line.memo) == ("T-9", Decimal("1.50"), "ref")


def test_bad_rows_are_refused_with_line_column_and_rule_and_good_rows_kept():
    text = (
        "transaction_id,booked_at,amount,currency,counterparty,memo\n"
        "T-1,2026-11-21,10.00,CNY,,\n"
        ",2026-11-21,10.00,CNY,,\n"
        "T-3,21/11/2026,10.00,CNY,,\n"
        "T-4,2026-11-21,ten,CNY,,\n"
        "T-5,2026-11-21,1.234,CNY,,\n"
        "T-6,2026-11-21,0,CNY,,\n"
        "T-7,2026-11-21,5.00,yuan,,\n"
        "\n"
        "T-8,2026-11-22,7.00,CNY,,\n"
    )
    statement = parse_statement(text.encode())
    assert [line.transaction_id for line in statement.lines] == ["T-1", "T-8"]
    found = [(e.line, e.column) for e in statement.errors]
    assert found == [(3, "transaction_id"), (4, "booked_at"), (5, "amount"), (6, "amount"),
                     (7, "amount"), (8, "currency")]
    rules = {e.line: e.rule for e in statement.errors}
    assert rules[3] == "required" and "at most 2 decimals" in rules[6] and rules[7] == "must not be zero"


def test_a_repeated_transaction_is_read_once_and_a_different_one_is_a_conflict():
    text = (
        "transaction_id,booked_at,amount,currency\n"
        "T-1,2026-11-21,10.00,CNY\n"
        "T-1,2026-11-21,10.00,CNY\n"
        "T-1,2026-11-21,11.00,CNY\n"
    )
    statement = parse_statement(text.encode())
    assert len(statement.lines) == 1 and statement.duplicates_in_file == 1
    (conflict,) = statement.errors
    assert conflict.line == 4 and "conflict" in conflict.rule and "line 2" in conflict.rule


def test_a_missing_header_column_refuses_the_whole_file():
    with pytest.raises(StatementError, match="amount"):
        parse_statement(b"transaction_id,booked_at,currency\nT-1,2026-11-21,CNY\n")
    with pytest.raises(StatementError, match="empty"):
        parse_statement(b"")


ICBC = (
    "账号,1202000000000000000\n"
    "户名,杭州示例贸易有限公司\n"
    "交易流水号,交易日期,借方发生额,贷方发生额,币种,对方户名,摘要,附言\n"
    "ICBC-001,2026/11/21,,\"1,395.00\",人民币,王芳,货款,INV-2026-000001\n"
    "ICBC-002,20261122 09:30:00,12.00,,人民币,工商银行,手续费,\n"
    "ICBC-003,2026-11-22,,88.00,美元,ACME Ltd,,TM-123456\n"
    "ICBC-004,2026-11-22,5.00,6.00,人民币,X,,\n"
    "ICBC-005,2026-11-22,,,人民币,X,,\n"
    "ICBC-006,2026-13-01,,6.00,人民币,X,,\n"
)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_icbc_export_in_gbk_or_utf8(encoding):
    statement = parse_statement(ICBC.encode(encoding), "icbc")
    first, fee, dollars = statement.lines
    assert (first.transaction_id, first.booked_on, first.amount, first.currency) == (
        "ICBC-001", date(2026, 11, 21), Decimal("1395.00"), "CNY")
    assert (first.counterparty, first.memo, first.line) == ("王芳", "货款 INV-2026-000001", 4)
    assert (fee.booked_on, fee.amount) == (date(2026, 11, 22), Decimal("-12.00"))
    assert (dollars.currency, dollars.memo) == ("USD", "TM-123456")
    assert [(e.line, e.column) for e in statement.errors] == [
        (7, "贷方发生额/借方发生额"), (8, "贷方发生额/借方发生额"), (9, "交易日期")]
    assert "both filled" in statement.errors[0].rule and "neither filled" in statement.errors[1].rule


def test_icbc_without_its_header_is_refused():
    with pytest.raises(StatementError, match="交易流水号"):
        parse_statement(STANDARD.encode(), "icbc")


def test_undecodable_bytes_are_refused():
    with pytest.raises(StatementError, match="neither UTF-8 nor GBK"):
        parse_statement(b"transaction_id\n\xff\xff\xff\n")
