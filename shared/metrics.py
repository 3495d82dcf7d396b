"""In-process counters exposed in the Prometheus text format at ``/metrics``."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] += amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self._counters.items() if n == name)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            items = sorted(self._counters.items())
        for (name, labels), value in items:
            rendered = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


METRICS = Metrics()


def scraped_total(text: str, name: str) -> float:
    """The counter ``name`` in a ``/metrics`` page (``render``'s format), all its labels added up:
    what a client reading another process's counters wants."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((f"{name} ", f"{name}{{")))
