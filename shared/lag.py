"""How far behind a consumer is: the age of the messages it is handling, per partition.

A consumer with a backlog sees, in every batch it gets, messages the producers sent a while ago;
one that keeps up sees messages sent a moment ago, or none. ``ConsumerLag`` keeps, per topic and
partition, the age of the newest message handled (the broker timestamp against the wall clock,
when it was handled) and says how far behind the consumer is now: the largest age among the
partitions heard from lately. A partition not heard from for ``fresh_for`` seconds is taken to
be caught up: a partition with a backlog delivers in every fetch.

This is the consumer's physical lag (the broker's and this host's clocks), not domain time: a
service uses it to know which facts it cannot have seen yet (reconcile's grace, for one), so it
reads the wall clock, whatever clock the domain is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.incoming import Incoming


@dataclass(slots=True)
class ConsumerLag:
    fresh_for: float = 5.0  # seconds a partition's age counts after it was last heard from
    wall: Callable[[], float] = time.time  # seconds since the epoch
    _ages: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)

    def observe(self, messages: Iterable[Incoming]) -> None:
        """Note the age of the newest message of each partition among ``messages`` (those without
        a broker timestamp, e.g. a replay's, say nothing)."""
        now = self.wall()
        newest: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.timestamp_ms is not None:
                where = (message.topic, message.partition)
                newest[where] = max(message.timestamp_ms, newest.get(where, message.timestamp_ms))
        for where, sent_ms in newest.items():
            self._ages[where] = (max(0.0, now - sent_ms / 1000), now)

    def behind(self) -> float:
        """Seconds behind now: the largest age among partitions heard from within ``fresh_for``
        (0 when caught up, idle, or never told)."""
        now = self.wall()
        return max((age for age, heard in self._ages.values() if now - heard <= self.fresh_for),
                   default=0.0)
