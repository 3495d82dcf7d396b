"""Bank statement CSV files read into bank lines: the standard columns and an ICBC-style export.

Standard format (UTF-8, header row required, column order free, header names case-insensitive):

    transaction_id  the bank's transaction id (required, unique per bank, at most 64 characters)
    booked_at       booking day ``2026-11-21`` or ISO 8601 instant ``2026-11-21T10:15:00+08:00``
                    (the day is taken in the instant's own offset) (required)
    amount          decimal string with at most 2 decimals, positive = money in,
                    negative = money out; not zero (required)
    currency        ISO 4217 code such as CNY (required)
    counterparty    the payer's name (optional)
    memo            the payer's reference text (optional)

ICBC-style export (``--format icbc``; rows above the header such as 账号/户名 are skipped):

    交易流水号 -> transaction_id
    交易日期 (or 交易时间) -> booked_at; ``2026-11-21``, ``2026/11/21``, ``20261121``, optionally
                              followed by a time of day
    贷方发生额 -> money in (amount positive); 借方发生额 -> money out (amount negative); exactly
                 one of them filled per row; thousands separators (``1,234.56``) accepted
    币种 -> currency; 人民币/RMB -> CNY, 美元 -> USD, 港币 -> HKD, 欧元 -> EUR, else an ISO code;
           an empty 币种 means CNY
    对方户名 -> counterparty
    摘要 and 附言 (or 用途) -> memo, joined with a space

Both formats: UTF-8 (with or without BOM) or GBK/GB18030. Each bad row is refused with its line
number (the header is line 1 in the standard format), the column and the rule broken; the good rows
are still read. A transaction id repeated with the same content is read once; repeated with
different content every later row is refused as a conflict.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

Format = Literal["standard", "icbc"]
FORMATS: tuple[Format, ...] = ("standard", "icbc")
STANDARD_COLUMNS = ("transaction_id", "booked_at", "amount", "currency", "counterparty", "memo")
REQUIRED_STANDARD = ("transaction_id", "booked_at", "amount", "currency")
ICBC_ID, ICBC_DAY, ICBC_DAY_ALT = "交易流水号", "交易日期", "交易时间"
ICBC_CREDIT, ICBC_DEBIT, ICBC_CURRENCY = "贷方发生额", "借方发生额", "币种"
ICBC_COUNTERPARTY, ICBC_MEMOS = "对方户名", ("摘要", "附言", "用途")
ICBC_CURRENCIES = {"人民币": "CNY", "RMB": "CNY", "美元": "USD", "港币": "HKD", "港元": "HKD",
                   "欧元": "EUR", "日元": "JPY", "英镑": "GBP"}
CENT = Decimal("0.01")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COMPACT_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


class StatementError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass(frozen=True, slots=True)
class BankLine:
    transaction_id: str
    booked_on: date
    amount: Decimal
    currency: str
    counterparty: str
    memo: str
    line: int = 0

    @property
    def content_hash(self) -> str:
        """What a re-import must repeat exactly to count as the same transaction."""
        canon = "\x1f".join((self.transaction_id, self.booked_on.isoformat(), str(self.amount),
                             self.currency, self.counterparty, self.memo))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    rule: str

    def describe(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class Statement:
    lines: tuple[BankLine, ...]
    errors: tuple[RowError, ...]
    duplicates_in_file: int


def decode(raw: bytes) -> str:
    """UTF-8 (BOM optional), else GB18030 (a superset of GBK)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError as error:
        raise StatementError(f"the file is neither UTF-8 nor GBK: {error}") from None


def parse_statement(raw: bytes, fmt: Format = "standard") -> Statement:
    if fmt not in FORMATS:
        raise StatementError(f"format {fmt!r} unknown; accepted: {', '.join(FORMATS)}")
    rows = list(_numbered_rows(decode(raw)))
    parsed = _standard(rows) if fmt == "standard" else _icbc(rows)
    return _dedupe(parsed)


def _numbered_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, [cell.strip() for cell in row]


Parsed = list[BankLine | RowError | tuple[RowError, ...]]


def _standard(rows: list[tuple[int, list[str]]]) -> Parsed:
    if not rows:
        raise StatementError("the file is empty: a header row is required")
    header = [name.lower() for name in rows[0][1]]
    missing = [name for name in REQUIRED_STANDARD if name not in header]
    if missing:
        raise StatementError(f"header misses column(s) {', '.join(missing)}; "
                             f"expected {', '.join(STANDARD_COLUMNS)}")
    out: Parsed = []
    for number, cells in rows[1:]:
        if not any(cells):
            continue
        row = dict(zip(header, cells, strict=False))
        errors: list[RowError] = []
        tx = _transaction_id(row.get("transaction_id", ""), number, "transaction_id", errors)
        day = _day(row.get("booked_at", ""), number, "booked_at", errors)
        amount = _amount(row.get("amount", ""), number, "amount", errors, thousands=False)
        currency = _currency(row.get("currency", ""), number, "currency", errors)
        out.append(_line_or_errors(tx, day, amount, currency, row.get("counterparty", ""),
                                   row.get("memo", ""), number, errors))
    return out


def _icbc(rows: list[tuple[int, list[str]]]) -> Parsed:
    start = next((i for i, (_, cells) in enumerate(rows) if ICBC_ID in cells), None)
    if start is None:
        raise StatementError(f"no header row with {ICBC_ID} found (is this an ICBC export?)")
    header = rows[start][1]
    day_column = ICBC_DAY if ICBC_DAY in header else ICBC_DAY_ALT
    missing = [n for n in (day_column, ICBC_CREDIT, ICBC_DEBIT) if n not in header]
    if missing:
        raise StatementError(f"header misses column(s) {', '.join(missing)}")
    out: Parsed = []
    for number, cells in rows[start + 1:]:
        if not any(cells):
            continue
        row = dict(zip(header, cells, strict=False))
        errors: list[RowError] = []
        tx = _transaction_id(row.get(ICBC_ID, ""), number, ICBC_ID, errors)
        day = _day(row.get(day_column, ""), number, day_column, errors)
        amount = _icbc_amount(row.get(ICBC_CREDIT, ""), row.get(ICBC_DEBIT, ""), number, errors)
        named = row.get(ICBC_CURRENCY, "") or "CNY"
        currency = _currency(ICBC_CURRENCIES.get(named, named), number, ICBC_CURRENCY, errors)
        memo = " ".join(row[n] for n in ICBC_MEMOS if row.get(n))
        out.append(_line_or_errors(tx, day, amount, currency, row.get(ICBC_COUNTERPARTY, ""), memo,
                                   number, errors))
    return out


def _line_or_errors(tx: str, day: date | None, amount: Decimal | None, currency: str,
                    counterparty: str, memo: str, number: int,
                    errors: list[RowError]) -> BankLine | tuple[RowError, ...]:
    if errors or day is None or amount is None:
        return tuple(errors)
    return BankLine(tx, day, amount, currency, counterparty, memo, number)


def _transaction_id(value: str, number: int, column: str, errors: list[RowError]) -> str:
    if not value:
        errors.append(RowError(number, column, "required"))
    elif len(value) > 64:
        errors.append(RowError(number, column, "at most 64 characters"))
    return value


def _day(value: str, number: int, column: str, errors: list[RowError]) -> date | None:
    text = value.strip()
    if not text:
        errors.append(RowError(number, column, "required"))
        return None
    candidate = text.replace("/", "-")
    compact = _COMPACT_DAY.match(candidate[:8]) if len(candidate) >= 8 else None
    if compact and (len(candidate) == 8 or candidate[8] in " T"):
        candidate = f"{compact[1]}-{compact[2]}-{compact[3]}{candidate[8:]}"
    try:
        if len(candidate) == 10:
            return date.fromisoformat(candidate)
        return datetime.fromisoformat(candidate).date()
    except ValueError:
        errors.append(RowError(number, column, f"{value!r} is not a day (2026-11-21) or an ISO 8601 "
                                               "date-time"))
        return None


def _amount(value: str, number: int, column: str, errors: list[RowError], *,
            thousands: bool) -> Decimal | None:
    text = value.replace(",", "") if thousands else value
    if not text:
        errors.append(RowError(number, column, "required"))
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        errors.append(RowError(number, column, f"{value!r} is not a decimal number"))
        return None
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2:
        errors.append(RowError(number, column, f"{value!r}: at most 2 decimals"))
        return None
    if amount == 0:
        errors.append(RowError(number, column, "must not be zero"))
        return None
    return amount.quantize(CENT)


def _icbc_amount(credit: str, debit: str, number: int, errors: list[RowError]) -> Decimal | None:
    filled = [(column, value) for column, value in ((ICBC_CREDIT, credit), (ICBC_DEBIT, debit))
              if value and value.replace(",", "") not in ("0", "0.00", "-")]
    if len(filled) != 1:
        rule = "neither filled" if not filled else "both filled"
        errors.append(RowError(number, f"{ICBC_CREDIT}/{ICBC_DEBIT}",
                               f"exactly one of them must hold an amount ({rule})"))
        return None
    column, value = filled[0]
    amount = _amount(value, number, column, errors, thousands=True)
    if amount is None:
        return None
    if amount < 0:
        errors.append(RowError(number, column, "must be positive (the column says the direction)"))
        return None
    return amount if column == ICBC_CREDIT else -amount


def _currency(value: str, number: int, column: str, errors: list[RowError]) -> str:
    code = value.strip().upper()
    if not _CURRENCY.match(code):
        errors.append(RowError(number, column, f"{value!r} is not an ISO 4217 code such as CNY"))
    return code


def _dedupe(parsed: Parsed) -> Statement:
    lines: list[BankLine] = []
    errors: list[RowError] = []
    seen: dict[str, BankLine] = {}
    duplicates = 0
    for item in parsed:
        if isinstance(item, RowError):
            errors.append(item)
        elif isinstance(item, tuple):
            errors.extend(item)
        elif item.transaction_id in seen:
            first = seen[item.transaction_id]
            if first.content_hash == item.content_hash:
                duplicates += 1
            else:
                errors.append(RowError(item.line, "transaction_id",
                                       f"{item.transaction_id!r} already on line {first.line} with "
                                       "different content (conflict)"))
        else:
            seen[item.transaction_id] = item
            lines.append(item)
    return Statement(tuple(lines), tuple(errors), duplicates)
