"""Benchmark results: one row per measurement, ratios against baselines, JSON and markdown."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does (``--quick`` for a CI smoke run)."""

    single_appends: int = 2000  # commands per writer-count run, one event each
    repeats: int = 3  # appends and batches: best of this many runs of each side
    batch_events: int = 50_000  # events appended in batches
    batch_size: int = 100
    e2e_orders: int = 600
    latency_rate: float = 300.0
    latency_seconds: float = 20.0
    latency_settle: float = 30.0  # seconds to wait for confirmations after the last send
    latency_low_rate: float = 5.0  # also measured: a load the services keep up with
    latency_low_seconds: float = 10.0
    replay_events: int = 200_000
    replay_batch: int = 500
    bank_lines: int = 100_000  # the target itself: 100,000 lines against 1,000,000 open items
    bank_items: int = 1_000_000
    bank_budget: float = 60.0  # seconds of matching; the rest is extrapolated (linearly in lines)
    scale: tuple[tuple[str, int], ...] = ()  # benches 3-4: instances per service (``--scale``)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(single_appends=300, repeats=1, batch_events=5000, e2e_orders=100, latency_rate=20.0,
                   latency_seconds=3.0, latency_settle=15.0,
                   latency_low_rate=5.0, latency_low_seconds=2.0,
                   replay_events=2000, bank_lines=10_000, bank_items=100_000,
                   bank_budget=10.0)

    @classmethod
    def tiny(cls) -> Sizes:
        """For tests: each benchmark runs, nothing is measured meaningfully."""
        return cls(single_appends=50, repeats=1, batch_events=200, batch_size=20, e2e_orders=10,
                   latency_rate=20.0, latency_seconds=1.0, latency_settle=5.0, replay_events=50,
                   latency_low_seconds=1.0,
                   replay_batch=20, bank_lines=50, bank_items=200)


@dataclass(slots=True)
class Row:
    """One measured figure (``value`` in ``unit``), with its target when the issue sets one."""

    bench: str
    name: str
    value: float | None
    unit: str
    note: str = ""
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    shown: str = ""  # what the table shows instead of an absent value


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    seconds: float = 0.0
    quick: bool = False

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def value(self, bench: str, name: str) -> float | None:
        for row in self.rows:
            if row.bench == bench and row.name == name:
                return row.value
        return None

    def to_json(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "seconds": round(self.seconds, 1),
                "quick": self.quick, "machine": self.machine,
                "rows": [asdict(r) for r in self.rows]}

    def to_markdown(self) -> str:
        lines = [f"# oms bench ({'quick' if self.quick else 'default sizes'}), {self.started_at}",
                 "", f"Machine: {self.machine.get('cpus')} CPUs, {self.machine.get('cpu_model')}, "
                 f"Python {self.machine.get('python')}; total {self.seconds:.0f} s. "
                 "Other work shared the machine: figures are noisy.", "",
                 "| bench | measurement | value | unit | target | met | note |",
                 "|---|---|---:|---|---|---|---|"]
        for r in self.rows:
            met = "" if r.met is None else ("yes" if r.met else "**no**")
            value = r.shown if r.value is None and r.shown else format_value(r.value)
            lines.append(f"| {r.bench} | {r.name} | {value} | {r.unit} | "
                         f"{r.target} | {met} | {r.note} |")
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        stamp = self.started_at.replace(":", "").replace("-", "")
        json_path = out / f"bench-{stamp}.json"
        md_path = out / f"bench-{stamp}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        md_path.write_text(self.to_markdown())
        (out / "latest.json").write_text(json_path.read_text())
        (out / "latest.md").write_text(md_path.read_text())
        return json_path, md_path


def format_value(value: float | None) -> str:
    if value is None:
        return "not measured"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "load_avg": list(os.getloadavg())}


def utc_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def percentile(samples: list[float], p: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
