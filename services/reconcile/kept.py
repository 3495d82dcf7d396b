"""Fact sheets kept in memory between batches, so a batch need not read and parse again the
sheets the previous ones just wrote.

An order's events reach reconcile over four topics in several batches, and each batch locked,
read and parsed the order's whole sheet (its facts document) again: seven times per order in
bench 3 (py-spy put the parsing at a tenth of the service's samples; the measured gain is
about 4 % of its CPU, and PostgreSQL no longer sends each document seven times). Now a
batch's sheets are kept, once its transaction committed, with the revision they were saved at;
the next batch locks the rows as before and gets the facts from the database only where the
revision there is not the kept one (another instance, the grace-period job or a one-at-a-time
retry wrote the sheet since, or it was never kept). The facts are immutable (each event makes
a new ``OrderFacts``), so what is kept cannot be changed by a batch that is then rolled back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from services.reconcile.domain import OrderFacts
from services.reconcile.store import Sheet


class KeptSheets:
    """The latest committed (revision, facts) of up to ``limit`` sheets, least recently kept
    dropped first."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[int, OrderFacts]] = OrderedDict()

    @property
    def facts(self) -> Mapping[str, tuple[int, OrderFacts]]:
        return self._kept

    def revisions(self, orders: Iterable[str]) -> dict[str, int]:
        """The kept revision of each of ``orders`` that is kept."""
        return {order: kept[0] for order in orders if (kept := self._kept.get(order)) is not None}

    def keep(self, sheets: Iterable[Sheet]) -> None:
        """After the commit: the sheets as saved (their revision counted up by the save)."""
        for sheet in sheets:
            order_id = sheet.facts.order_id
            self._kept[order_id] = (sheet.revision, sheet.facts)
            self._kept.move_to_end(order_id)
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
