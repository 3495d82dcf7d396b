"""How far behind the facts a consumer sees are: its own lag, and how late answers come.

A consumer with a backlog sees, in every batch it gets, messages the producers sent a while ago;
one that keeps up sees messages sent a moment ago, or none. ``ConsumerLag`` keeps, per topic and
partition, the age of the newest message handled (the broker timestamp against the wall clock,
when it was handled). A partition not heard from for ``fresh_for`` seconds is taken to be caught
up: a partition with a backlog delivers in every fetch.

A producer can be behind too: when the order service is minutes behind billing's topic, its
``order.paid`` for a payment billing recorded comes minutes after the payment, though both reach
the consumer at once. With ``remember`` > 0 the consumer notes when the last ``remember`` of
the events it handled happened (one in ``sample``, chosen by event id, so that a few megabytes
cover minutes of a busy consumer's events), and when an event answers one of them (its
``causation_id``) how long the answer took, per topic and event type (one producer answers
several inputs, each with its own backlog); the latest answer time of each heard from within
``answers_fresh_for`` seconds counts (capped at ``cap``: an answer to an old
cause, e.g. a backorder reserved days later when stock came, is no news about the producer's
pace; a producer that stopped answering altogether is soon not heard from).

A producer can also fall silent: down or stuck, it answers nothing, and the orders it owes
answers for would each look lost. With ``silences`` (``shared/silence.py``) the consumer learns
who answers what and counts, per producer, how long it has owed answers without a word; that
counts like a late answer.

``local()`` adds the two: how much older than now the newest facts the consumer has can be. It
reads the wall clock and the events' own times (the services' clocks), not the domain clock a
service is given, and only messages that came from a broker (a replay's say nothing).

Several instances of a consumer (one consumer group, ``oms run --scale``) each see only their own
partitions, while their decisions are about the same orders: an order's facts come on several
topics, whose partitions may be with different instances. So each instance tells the others how
far behind it is (``shared/lagshare.py``, through the service's database) and ``behind()`` is the
largest of its own figure and the others' (``hear_elsewhere``: their latest report, counted for
``elsewhere_fresh_for`` seconds, so an instance that stopped reporting soon stops counting).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from shared.contract.envelope import EventEnvelope
from shared.incoming import Incoming
from shared.silence import Silences


@dataclass(slots=True)
class ConsumerLag:
    fresh_for: float = 5.0  # seconds a partition's age counts after it was last heard from
    wall: Callable[[], float] = time.time  # seconds since the epoch
    remember: int = 0  # events whose time is kept to time their answers (0: answers not timed)
    answers_fresh_for: float = 60.0
    cap: float = 900.0  # seconds: longer answer times count as this
    sample: int = 64  # one event in this many is remembered (by its id)
    elsewhere_fresh_for: float = 15.0  # seconds the other instances' latest report counts
    silences: Silences | None = None  # producers gone quiet while owing answers (None: not watched)
    _ages: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    _seen: OrderedDict[str, datetime] = field(default_factory=OrderedDict)
    _answers: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    _elsewhere: tuple[float, float] = (0.0, float("-inf"))  # (seconds behind, when heard)

    def observe(self, messages: Iterable[Incoming]) -> None:
        """Note the age of the newest message of each partition among ``messages`` and, when
        answers are timed, how long each answer to a remembered event took."""
        now = self.wall()
        newest: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.timestamp_ms is None:
                continue
            where = (message.topic, message.partition)
            newest[where] = max(message.timestamp_ms, newest.get(where, message.timestamp_ms))
            if message.envelope is None:
                continue
            if self.remember:
                self._time_answer(message.topic, message.envelope, now)
            if self.silences is not None:
                self.silences.observe(message.topic, message.envelope, now)
        for where, sent_ms in newest.items():
            self._ages[where] = (max(0.0, now - sent_ms / 1000), now)

    def _time_answer(self, topic: str, event: EventEnvelope, now: float) -> None:
        cause = self._seen.get(event.causation_id) if event.causation_id else None
        if cause is not None:
            took = (event.occurred_at - cause).total_seconds()
            self._answers[(topic, event.event_type)] = (min(max(took, 0.0), self.cap), now)
        if event.event_id.int % self.sample == 0:
            self._seen[str(event.event_id)] = event.occurred_at
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)

    def behind(self) -> float:
        """Seconds: this instance's figure (``local``) or the other instances' latest report,
        whichever is larger."""
        return max(self.local(), self.elsewhere())

    def local(self) -> float:
        """Seconds: the largest age among partitions heard from within ``fresh_for`` plus the
        longest recent answer time or silence (0 when caught up, idle, or never told)."""
        held = self.silences.holds(self.wall()) if self.silences is not None else {}
        return self.own() + max(chain(self.answer_times().values(), held.values()), default=0.0)

    def silent(self) -> dict[str, float]:
        """topic -> seconds its producer has owed answers without a word (``shared/silence.py``):
        down or stuck, so what it owes is not lost yet."""
        return self.silences.seconds(self.wall()) if self.silences is not None else {}

    def hear_elsewhere(self, seconds: float) -> None:
        """The largest ``local()`` the other instances of this consumer last reported."""
        self._elsewhere = (max(seconds, 0.0), self.wall())

    def elsewhere(self) -> float:
        """Seconds: the other instances' latest report, while it is fresh (else 0)."""
        seconds, heard = self._elsewhere
        return seconds if self.wall() - heard <= self.elsewhere_fresh_for else 0.0

    def own(self) -> float:
        """Seconds: the largest age among partitions heard from within ``fresh_for``."""
        now = self.wall()
        return max((age for age, heard in self._ages.values() if now - heard <= self.fresh_for),
                   default=0.0)

    def answer_times(self) -> dict[tuple[str, str], float]:
        """(topic, event type) -> seconds the latest answer of that kind took, for those heard
        within ``answers_fresh_for``: which service answers late."""
        now = self.wall()
        return {kind: took for kind, (took, heard) in self._answers.items()
                if now - heard <= self.answers_fresh_for}
