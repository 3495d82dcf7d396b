"""Which producers have gone silent while they owe answers, and since when.

A service that is down publishes nothing, so every order it should have answered meanwhile looks,
to a consumer judging whether the services agree, like an order it lost: a ten-minute billing
outage at 20 orders/s would be 12,000 "confirmed, not invoiced" discrepancies, each alerting
people, for orders nobody lost. What tells the two apart is that a service that lost an order goes
on answering the others, while one that is down (or stuck) answers none.

``Silences`` learns who answers what from the events themselves: an event on topic T whose
``causation_id`` names a recent event of type E on topic C means that T answers (C, E). From
then on, each (C, E) heard makes T owe an answer, and anything heard on T settles what T owes
(it is alive and working through its input, so what it owes is on its way: for ``after``
seconds its silence still counts in ``holds()``). A topic owing ``owed_before_silent`` answers or
more is silent since the first of them; ``seconds()`` says how long, capped at ``cap``: a
service silent for longer than that is left to raise what it owes, since its orders have waited
long enough for people to hear of each (and a cause a producer only sometimes answers must not
hold raises back for ever while traffic is low).

What one instance learns is shared with the others and kept for the next start through the
consumer's database (``shared/lagshare.py``: ``untold`` and ``teach``).

The times are this host's wall clock when the events were handled; only events that came from a
broker are observed (a replay's say nothing). Learning forgets nothing (a handful of pairs);
the recent events it learns from are the last ``recent`` handled.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contract.envelope import EventEnvelope

Answer = tuple[str, str, str]  # (answering topic, cause topic, cause event type)


@dataclass(slots=True)
class Silences:
    owed_before_silent: int = 5  # answers owed before a topic counts as silent
    cap: float = 3600.0  # seconds: a longer silence counts as this
    recent: int = 4096  # events remembered to learn who answers them
    after: float = 60.0  # seconds a silence still counts once its producer speaks again
    _recent: OrderedDict[str, tuple[str, str]] = field(default_factory=OrderedDict)
    _answered_by: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _owed: dict[str, tuple[float, int]] = field(default_factory=dict)  # topic -> (since, owed)
    _spoke: dict[str, tuple[float, float]] = field(default_factory=dict)  # topic -> (silent, when)
    _told: set[Answer] = field(default_factory=set)  # learned pairs already shared (``teach``)

    def observe(self, topic: str, event: EventEnvelope, now: float) -> None:
        """One event heard on ``topic`` at ``now`` (in the order handled)."""
        settled = self._owed.pop(topic, None)  # heard from: it is answering
        if settled is not None and settled[1] >= self.owed_before_silent:
            self._spoke[topic] = (min(now - settled[0], self.cap), now)
        if event.causation_id is not None:
            cause = self._recent.get(event.causation_id)
            if cause is not None and cause[0] != topic:
                self._answered_by.setdefault(cause, set()).add(topic)
        kind = (topic, event.event_type)
        for answerer in self._answered_by.get(kind, ()):
            since, owed = self._owed.get(answerer, (now, 0))
            self._owed[answerer] = (since, owed + 1)
        self._recent[str(event.event_id)] = kind
        if len(self._recent) > self.recent:
            self._recent.popitem(last=False)

    def untold(self) -> set[Answer]:
        """What was learned here and not shared yet: (answering topic, cause topic, cause type)."""
        return {(answerer, *kind) for kind, answerers in self._answered_by.items()
                for answerer in answerers} - self._told

    def teach(self, answers: Iterable[Answer]) -> None:
        """Learn what was learned elsewhere (another instance, an earlier run), and take it as
        shared: a consumer started while a producer is down knows at once what it owes."""
        for answerer, cause_topic, cause_type in answers:
            self._answered_by.setdefault((cause_topic, cause_type), set()).add(answerer)
            self._told.add((answerer, cause_topic, cause_type))

    def answers(self) -> dict[str, set[tuple[str, str]]]:
        """topic -> the (topic, event type) pairs it has been seen answering."""
        found: dict[str, set[tuple[str, str]]] = {}
        for kind, answerers in self._answered_by.items():
            for answerer in answerers:
                found.setdefault(answerer, set()).add(kind)
        return found

    def seconds(self, now: float) -> dict[str, float]:
        """topic -> seconds it has been silent at ``now`` while owing answers (only the silent
        ones)."""
        return {topic: min(max(now - since, 0.0), self.cap)
                for topic, (since, owed) in self._owed.items() if owed >= self.owed_before_silent}

    def holds(self, now: float) -> dict[str, float]:
        """topic -> seconds a consumer's horizon waits for it: its silence and, for ``after``
        seconds once it speaks again, how long it was silent (the answers it owes are on their way,
        behind the backlog it is working through)."""
        held = {topic: silent for topic, (silent, spoke) in self._spoke.items()
                if now - spoke <= self.after}
        for topic, silent in self.seconds(now).items():
            held[topic] = max(silent, held.get(topic, 0.0))
        return held
