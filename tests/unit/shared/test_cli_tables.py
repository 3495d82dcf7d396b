"""Tables in the CLI stay readable in an 80-column terminal (or a pipe): whole cells, never ids
cut to ``O-7DDD2…``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.cli.tables import natural_width, print_table

INVOICE = ("INV-2026-000013", "full", "O-7DDD233CBD3A1006", "2026-12-06T03:52:26.163219+00:00",
           "2026-12-06", "CNY", "101.70", "101.70", "0.00", "paid")
COLUMNS = ("voucher_number", "kind", "order_id", "issued_at", "due_date", "currency", "total",
           "paid_total", "outstanding", "status")


def rendered(table: Table, width: int, key: int = 1) -> list[str]:
    out = Console(width=width, record=True, color_system=None)
    print_table(out, table, key=key)
    return [line.rstrip() for line in out.export_text().splitlines()]


def invoices() -> Table:
    table = Table(title="invoices of O-7DDD233CBD3A1006")
    for column in COLUMNS:
        table.add_column(column)
    table.add_row(*INVOICE)
    table.add_row(*("INV-2026-000014", "full", "O-1", "2026-12-06", "", "CNY", "5.00", "0.00",
                    "5.00", "[red]open[/red]"))
    return table


def test_a_table_too_wide_becomes_one_record_per_row_with_every_value_whole() -> None:
    lines = rendered(invoices(), 80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0] == "invoices of O-7DDD233CBD3A1006"
    assert lines[1] == "INV-2026-000013"
    record = " ".join(line.strip() for line in lines[2:lines.index("INV-2026-000014")])
    assert record == ("kind full · order_id O-7DDD233CBD3A1006 · issued_at "
                      "2026-12-06T03:52:26.163219+00:00 · due_date 2026-12-06 · currency CNY · "
                      "total 101.70 · paid_total 101.70 · outstanding 0.00 · status paid")
    assert "due_date" not in " ".join(lines[lines.index("INV-2026-000014"):])  # empty: left out
    assert lines[-1].strip().endswith("status open")  # markup read, not printed


def test_a_table_that_fits_is_printed_as_a_table_and_the_heading_may_span_columns() -> None:
    table = Table("#", "when", "kind", "qty")
    table.add_row("2118", "2026-12-06 03:52", "deducted", "2")
    assert natural_width(table) <= 80
    lines = rendered(table, 80)
    assert any("2118" in line and "deducted" in line and "│" in line for line in lines)
    narrow = rendered(table, 30, key=2)
    assert narrow[0] == "2118  2026-12-06 03:52"
    assert narrow[1] == "  kind deducted · qty 2"
