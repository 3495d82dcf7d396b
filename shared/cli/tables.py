"""Tables that stay readable in any terminal: a table when it fits, else one record per row.

Rich squeezes a table that is wider than the terminal (80 columns when the output is piped) by
wrapping and cutting cells: ids came out as ``O-7DDD2…``, just what an operator has to copy into
the next command. ``print_table`` prints the table as built when every cell fits whole; else
each row becomes a heading (its first ``key`` cells) and the other cells as ``name value`` pairs
wrapped beneath it, nothing cut.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


def _plain(cell: RenderableType) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def natural_width(table: Table) -> int:
    """The width the table takes with no cell wrapped (padding and borders included)."""
    widths = []
    for column in table.columns:
        cells = [_plain(column.header), *(_plain(cell) for cell in column.cells)]
        widths.append(max((Text(line).cell_len for cell in cells for line in cell.splitlines()),
                          default=0))
    return sum(widths) + 3 * len(widths) + 1


def print_table(out: Console, table: Table, *, key: int = 1) -> None:
    """``table`` as it is when it fits ``out``'s width, else one record per row (see above)."""
    if natural_width(table) <= out.width:
        out.print(table)
        return
    if table.title:
        out.print(Text(_plain(table.title), style="bold"))
    columns = table.columns
    names = [_plain(column.header) for column in columns]
    rows = zip(*(list(column.cells) for column in columns), strict=True)
    for cells in rows:
        values = [_plain(cell) for cell in cells]
        out.print(Text("  ".join(v for v in values[:key] if v), style="bold"))
        details = [f"{name} {value}" for name, value in zip(names[key:], values[key:], strict=True)
                   if value]
        if details:
            print_indented(out, " · ".join(details))


def print_indented(out: Console, text: str, indent: int = 2) -> None:
    """``text`` wrapped at ``out``'s width less ``indent``, each line indented, no trailing
    blanks (Padding fills every line to the block's width)."""
    for line in Text(text).wrap(out, max(20, out.width - indent)):
        line.rstrip()
        out.print(Text(" " * indent) + line, highlight=False)
