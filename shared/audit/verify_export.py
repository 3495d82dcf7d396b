"""Standalone re-verification of an ``oms audit export`` (standard library only; copy it anywhere).

Usage: ``python verify_export.py export.jsonl`` (or ``.csv``); exits 1 naming the first bad event.

The algorithm (all an auditor needs):
1. For each event build the document ``{"prev_hash": prev_hash or "", "event_id",
   "event_type", "schema_version", "stream_id", "stream_version", "occurred_at", "correlation_id",
   "causation_id", "actor", "payload", "key"}`` from the exported fields (``occurred_at`` exactly
   as exported: UTC, microseconds, ``+00:00``; ``causation_id`` null when absent; ``actor`` and
   ``payload`` as JSON objects).
2. Serialise it as JSON with keys sorted, separators ``,`` and ``:`` (no spaces), non-ASCII
   characters kept as UTF-8 (not ``\\u`` escapes); hash the UTF-8 bytes with SHA-256 (hex).
   The result must equal ``hash``.
3. Within one stream (per service), ordered by ``stream_version``, each event's ``prev_hash`` must
   be the previous event's ``hash`` and versions must rise by one; the first event of a stream in
   the export has ``prev_hash`` null only at version 1 (else it links to an event before ``since``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

HASHED = ("event_id", "event_type", "schema_version", "stream_id", "stream_version",
          "occurred_at", "correlation_id", "causation_id", "actor", "payload", "key")


def event_hash(event: dict[str, Any]) -> str:
    document = {name: event[name] for name in HASHED}
    document["prev_hash"] = event["prev_hash"] or ""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def read_export(lines: Iterable[str], csv_format: bool) -> Iterator[dict[str, Any]]:
    if not csv_format:
        for line in lines:
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(lines):
        event: dict[str, Any] = dict(row)
        for name in ("schema_version", "stream_version"):
            event[name] = int(event[name])
        for name in ("actor", "payload"):
            event[name] = json.loads(event[name])
        for name in ("causation_id", "prev_hash"):
            event[name] = event[name] or None
        yield event


def first_problem(events: Iterable[dict[str, Any]]) -> str | None:
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        name = f"{event['service']}/{event['stream_id']} v{event['stream_version']} ({event['event_id']})"
        if event_hash(event) != event["hash"]:
            return f"{name}: hash does not match its content"
        stream = (event["service"], event["stream_id"])
        previous = last.get(stream)
        if previous is not None:
            if event["stream_version"] != previous["stream_version"] + 1:
                return f"{name}: follows version {previous['stream_version']}: an event is missing"
            if event["prev_hash"] != previous["hash"]:
                return f"{name}: prev_hash is not the previous event's hash"
        elif event["stream_version"] == 1 and event["prev_hash"] is not None:
            return f"{name}: the first event of a stream has a prev_hash"
        last[stream] = event
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    with open(argv[1], encoding="utf-8", newline="") as handle:
        events = sorted(read_export(handle, argv[1].endswith(".csv")),
                        key=lambda e: (e["service"], e["stream_id"], e["stream_version"]))
    problem = first_problem(events)
    if problem:
        print(f"BROKEN: {problem}")
        return 1
    print(f"OK: {len(events)} events verified")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
