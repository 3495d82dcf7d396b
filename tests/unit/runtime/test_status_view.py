"""``oms status``'s table: instances up out of all, unknown figures as ``?``, problems named."""

from __future__ import annotations

from rich.console import Console

from shared.cli.status import show
from shared.runtime.status import InstanceReport, ServiceReport, StatusReport


def test_a_down_instance_and_an_unreadable_part_are_shown_and_unhealthy() -> None:
    up = InstanceReport("billing", "http://127.0.0.1:1", up=True, pid=42, consumed=1234)
    down = InstanceReport("billing-2", "http://127.0.0.1:2", problem="not answering (ConnectError)")
    billing = ServiceReport("billing", [up, down], lag=7, members=1, unpublished=0, dead_letters=2)
    order = ServiceReport("order", [InstanceReport("order", "http://127.0.0.1:3", up=True)],
                          problems=["database: connection refused"])
    assert not billing.healthy and not order.healthy
    assert ServiceReport("notify", [up]).healthy
    console = Console(record=True, width=200)
    found = StatusReport([billing, order], ["broker 127.0.0.1:9: KafkaConnectionError"])
    assert not found.healthy and not StatusReport([], ["x"]).healthy
    show(console, found)
    text = console.export_text()
    assert "│ billing │ 1/2 │             7 │         1 │           0 │            2 │" in text
    assert "│ order   │ 1/1 │             ? │         ? │           ? │            ? │" in text
    assert "down not answering (ConnectError)" in text and "1,234" in text
    assert "order: database: connection refused" in text
    assert text.rstrip().endswith("broker 127.0.0.1:9: KafkaConnectionError")
    assert billing.as_json()["instances"][1]["problem"] == "not answering (ConnectError)"
