"""`oms dlq list` stays readable in an 80-column terminal: each letter's error on lines of its
own, whole words, not a table column a few characters wide."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from shared.cli.dlq import DeadLetter, show_letters

ERROR = ("ValidationError: payload.total: Input should be a valid decimal (got 'twelve'); "
         "payload.currency: String should match pattern '^[A-Z]{3}$' (got 'yuan')")


def letter(redriven: datetime | None = None) -> DeadLetter:
    return DeadLetter("billing", 3, "6f1c0d9e-0000-4000-8000-000000000001", "billing.orders",
                      "order.events", 2, 1187, "ORD-20261206-0042", b"{}", ERROR,
                      datetime(2026, 12, 6, 3, 8, 28, 123456, tzinfo=UTC), redriven)


def rendered(width: int) -> list[str]:
    out = Console(width=width, record=True, color_system=None)
    show_letters(out, [letter(), letter(datetime(2026, 12, 6, 4, 0, tzinfo=UTC))])
    return [line.rstrip() for line in out.export_text().splitlines()]


def test_a_narrow_terminal_gets_each_letter_and_its_whole_error_in_words() -> None:
    lines = rendered(80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0] == "billing #3  order.events 2/1187  key ORD-20261206-0042"
    assert lines[1] == "  failed 2026-12-06 03:08:28, pending"
    assert all(line.startswith("  ") for line in lines[1:lines.index(lines[0], 1)])
    joined = " ".join(line.strip() for line in lines)
    assert ERROR in joined  # wrapped between words, nothing cut
    assert "redriven 2026-12-06 04:00:00" in joined


def test_a_wide_terminal_gets_the_table() -> None:
    lines = rendered(200)
    assert any("service" in line and "error" in line and "redriven at" in line for line in lines)
    assert any("ORD-20261206-0042" in line and "2026-12-06 03:08:28" in line for line in lines)
