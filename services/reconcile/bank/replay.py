"""What ``oms replay reconcile`` carries over from the live database: the imported bank statements.

Bank lines and their allocations are people's input (statements imported, lines matched again
later), not facts a replay can derive from the events it feeds: the matching decisions are
events in reconcile's own log (``bank_line.matched`` / ``unmatched``, carried over by a swap like
the rest of the log), but the statement lines themselves (memo, counterparty, format, who
imported them) are kept only in ``bank_lines``. So the replay takes them and their allocations
from the live database as they stand when it is done (and again just before a swap), and sets
each open invoice's ``matched`` from the allocations. Without this a replay differed from live
as soon as one statement had been imported, and a swap lost every imported statement.
"""

from __future__ import annotations

from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.bank.store import bank_allocations, bank_lines
from shared.audit.carry import carrying_over
from shared.db import copy_rows


async def _copy(source: AsyncConnection, target: AsyncConnection, table: Table) -> None:
    await copy_rows(source, target, select(table).order_by(*table.primary_key.columns),
                    insert(table))


async def carry_over_statements(live_url: str, replay_url: str) -> None:
    """Give the replay database the live bank lines and allocations (replacing what it has)."""
    # lines and allocations as of one instant (an import writes both in one transaction)
    async with carrying_over(live_url, replay_url, "bank_lines") as both:
        if both is not None:  # else reconcile never ran on the live database
            source, target = both
            await target.execute(text("DELETE FROM bank_allocations"))
            await target.execute(text("DELETE FROM bank_lines"))
            await _copy(source, target, bank_lines)
            await _copy(source, target, bank_allocations)
            # the copied ids are the live ones: the next import must not take one of them
            await target.execute(text(
                "SELECT setval(pg_get_serial_sequence('bank_allocations', 'id'), "
                "coalesce(max(id), 0) + 1, false) FROM bank_allocations"))
            await target.execute(text(
                "UPDATE bank_invoices i SET matched = coalesce((SELECT sum(a.applied) "
                "FROM bank_allocations a WHERE a.voucher_number = i.voucher_number), 0)"))
