"""The garbage collector of a long-running service.

A service allocates many short-lived containers per message (records, envelopes, rows, dicts)
and keeps large long-lived structures (caches of order states, imported modules). With Python's
default thresholds (700, 10, 10) the collector runs every few hundred allocations and walks the
survivors again and again: 8-19 % of each service's CPU in the end-to-end bench (py-spy
--native, gc_collect_main). Two changes:

- ``gc.freeze()`` once the service has started: what exists then (modules, the app, settings,
  compiled statements) lives as long as the process and is never scanned again.
- a young-generation threshold of ``OMS_GC_THRESHOLD`` (default 50,000) new objects: most of a
  batch's objects are freed by reference counting before a collection looks at them, so fewer
  survive into the older generations. Memory held by reference cycles waits a little longer to
  be freed; ``0`` keeps Python's thresholds.
"""

from __future__ import annotations

import gc


def tune(threshold: int) -> None:
    """Freeze what exists now and set the young generation's threshold (``0``: unchanged)."""
    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)


def render() -> str:
    """The collector's counters and thresholds in the Prometheus text format (for /metrics), by
    generation."""
    lines: list[str] = []
    thresholds = gc.get_threshold()
    for generation, stats in enumerate(gc.get_stats()):
        lines.append(f'oms_gc_threshold{{generation="{generation}"}} {thresholds[generation]}')
        lines.append(f'oms_gc_collections_total{{generation="{generation}"}} {stats["collections"]}')
        lines.append(f'oms_gc_collected_total{{generation="{generation}"}} {stats["collected"]}')
    return "\n".join(lines) + "\n"
