"""End to end: the five services as OS processes on embedded PostgreSQL + Tansu, one flow through all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from shared.demo.audit import rebuild_from_history
from shared.demo.runner import ADMIN, DEMO_ENV, drive
from shared.runtime.supervisor import Runtime

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime():
    data_dir = Path(tempfile.mkdtemp(prefix="oms-e2e-"))
    rt = Runtime(data_dir=data_dir, fresh=True, auto_ports=True, extra_env=DEMO_ENV)
    rt.start(timeout=120)
    yield rt
    rt.stop()


def test_orders_flow_through_all_five_services_and_every_service_agrees(runtime):
    outcome = drive(runtime.info, 40, timeout=180, services=runtime)
    failed = [(c.service, c.what, c.expected, c.actual) for c in outcome.checks if not c.ok]
    assert failed == [], failed
    unexpected = [(o.name, o.expected, o.actual) for o in outcome.specials if not o.ok]
    assert unexpected == [], unexpected
    # an auditor's check of the day: every projection rebuilt from the history matches live
    # (it did not while reconcile decided its raises again, nor inventory in event time)
    rebuilt = rebuild_from_history(runtime.info.database_urls, runtime)
    for name in ("inventory", "billing", "notify", "reconcile"):
        runtime.start_service(name)
    assert [(r.service, r.differing) for r in rebuilt] == [
        ("inventory", ()), ("billing", ()), ("notify", ()), ("reconcile", ())]
    assert all(r.events > 0 for r in rebuilt)
    runtime.wait_healthy(timeout=120)
    info = runtime.info
    with httpx.Client(timeout=10, headers=ADMIN) as client:
        paid = client.get(f"{info.url('order')}/orders",
                          params={"limit": 20, "status": "paid", "channel": "web"}).json()["orders"]
        # an ordinary order (the demo's specials include a paid web order amended up, paid twice)
        details = (client.get(f"{info.url('order')}/orders/{o['order_id']}").json() for o in paid)
        detail = next(d for d in details
                      if not any(e["event_type"] == "order.amended" for e in d["events"]))
        order_id = detail["order"]["order_id"]
        orders = [detail["order"]]
        types = [e["event_type"] for e in detail["events"]]
        assert types[0] == "order.placed" and "order.confirmed" in types and types[-1] == "order.paid"
        by_channel = client.get(f"{info.url('order')}/orders/by-channel/{orders[0]['channel']}/"
                                f"{orders[0]['channel_order_id']}").json()
        assert by_channel["order"]["order_id"] == order_id
        reservation = client.get(f"{info.url('inventory')}/reservations/{order_id}")
        assert reservation.status_code == 200
        invoices = client.get(f"{info.url('billing')}/invoices", params={"order_id": order_id}).json()
        assert json.dumps(invoices).count("INV-") >= 1
        notes = client.get(f"{info.url('notify')}/notifications", params={"order_id": order_id}).json()
        assert len(notes if isinstance(notes, list) else notes.get("notifications", [])) == 2
        facts = client.get(f"{info.url('reconcile')}/orders/{order_id}").json()
        assert facts["status"] == "consistent"
        rejections = client.get(f"{info.url('order')}/rejections").json()["rejections"]
        assert {r["reasons"][0]["code"] for r in rejections} >= {
            "unknown_sku", "invalid_json", "unknown_type", "conflicting_duplicate"}
        for name in info.services:
            assert client.get(f"{info.url(name)}/health").status_code == 200
            # a service's own process tunes its collector (OMS_GC_THRESHOLD, default 50,000)
            assert 'oms_gc_threshold{generation="0"} 50000' in client.get(
                f"{info.url(name)}/metrics").text


def test_oms_stock_receive_cli_talks_to_the_running_inventory(runtime):
    env = {**os.environ, "OMS_INVENTORY_URL": runtime.info.url("inventory")}
    done = subprocess.run([sys.executable, "-m", "shared.cli.main", "stock", "receive", "GIFT-MUG",
                           "WH-E2E", "7"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    level = httpx.get(f"{runtime.info.url('inventory')}/stock/GIFT-MUG", headers=ADMIN).json()
    assert level["on_hand"] == 7
    refused = subprocess.run([sys.executable, "-m", "shared.cli.main", "stock", "receive", "GIFT-MUG",
                              "WH-E2E", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "quantity" in refused.stdout


def test_a_crashed_service_is_restarted_by_the_supervisor(runtime):
    runtime.kill_service("billing")
    runtime.wait_healthy(timeout=60, services=["billing"])
    assert runtime.restarts("billing") >= 1


def test_a_bank_statement_pays_the_invoices_it_matches(runtime, tmp_path):
    """Finance imports the day's statement: reconcile matches a transfer to an unpaid invoice by
    its voucher number, billing books it, the order is paid and every service agrees. A second
    transfer overpays its order beyond the tolerance: left unmatched, finance matches it by hand
    (`oms bank match`), and billing books that too."""
    import asyncio
    import random
    import time
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from shared.demo import traffic
    from shared.demo.plan import encode
    from shared.demo.runner import publish

    info = runtime.info
    submissions = []
    for n in (1, 2):  # the receipts below as typed: "X 200" and "x100" are
        submission = traffic.submission("web", n, rng=random.Random(10 + n),
                                        submitted_at=datetime.now(UTC) - timedelta(hours=1))
        submission["channel_order_id"] = f"WEB-BANK-00000{n}"
        submission["payment"] = {"method": "bank_transfer", "terms": "prepaid"}
        submissions.append(submission)
    with httpx.Client(timeout=30, headers=ADMIN) as client:
        for line in [line for submission in submissions for line in submission["lines"]]:
            client.post(f"{info.url('inventory')}/stock/receipts", json={
                "sku": line["sku"], "warehouse": "WH-BANK", "quantity": 10,
                "reason": "bank e2e"}).raise_for_status()
        asyncio.run(publish(info.kafka_bootstrap, [encode(s) for s in submissions]))

        def until(what, found, timeout=90.0):
            deadline = time.monotonic() + timeout
            while (value := found()) is None:
                assert time.monotonic() < deadline, what
                time.sleep(0.5)
            return value

        def order(channel_order_id):
            got = client.get(f"{info.url('order')}/orders/by-channel/web/{channel_order_id}")
            return got.json()["order"] if got.status_code == 200 else None

        def invoice_of(order_id):
            return until("its invoice", lambda: next(iter(client.get(
                f"{info.url('billing')}/invoices", params={"order_id": order_id}).json()), None))

        order_ids = [until("the order", lambda s=s: order(s["channel_order_id"]))["order_id"]
                     for s in submissions]
        invoice, overpaid = (invoice_of(order_id) for order_id in order_ids)
        statement = tmp_path / "statement.csv"
        statement.write_text(
            "transaction_id,booked_at,amount,currency,counterparty,memo\n"
            f"TX-E2E-1,{datetime.now(UTC).date()},{invoice['total']},CNY,"
            f"{submissions[0]['customer']['name']},payment for {invoice['voucher_number']}\n"
            f"TX-E2E-2,{datetime.now(UTC).date()},{Decimal(overpaid['total']) + 20},CNY,"
            f"{submissions[1]['customer']['name']},order WEB-BANK-000002\n",
            encoding="utf-8")
        env = {**os.environ, "OMS_RECONCILE_URL": info.url("reconcile")}

        def oms(*args):
            done = subprocess.run([sys.executable, "-m", "shared.cli.main", *args], env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            return " ".join(done.stdout.split())

        said = oms("bank", "import", str(statement))
        assert "matched 1 (flagged 0), unmatched 1 (flagged 1)" in said, said
        assert "overpayment" in said
        said = oms("bank", "lines", "--status", "unmatched")
        assert f"oms bank match TX-E2E-2 {overpaid['voucher_number']}" in said, said
        said = oms("bank", "match", "TX-E2E-2", overpaid["voucher_number"], "--note",
                   "overpaid 20.00: refund it")
        assert f"billing books bank:TX-E2E-2:{overpaid['voucher_number']}" in said, said

        for order_id, paid, line in ((order_ids[0], invoice, "TX-E2E-1"),
                                     (order_ids[1], overpaid, "TX-E2E-2")):
            [payment] = until("the bank payment in billing", lambda o=order_id: client.get(
                f"{info.url('billing')}/payments", params={"order_id": o}).json() or None)
            assert (payment["payment_id"], payment["source"], payment["amount"]) == (
                f"bank:{line}:{paid['voucher_number']}", "bank", paid["total"])
            until("the order paid", lambda o=order_id: True if client.get(
                f"{info.url('order')}/orders/{o}").json()["order"]["paid"] else None)
            until("reconcile agreeing", lambda o=order_id: True if client.get(
                f"{info.url('reconcile')}/orders/{o}").json()["status"] == "consistent"
                else None)
        open_items = client.get(f"{info.url('reconcile')}/bank/open-items").json()
        assert not {"TX-E2E-1", "TX-E2E-2"} & {
            line["transaction_id"] for line in open_items["unmatched_lines"]}

    # the auditor's view: what every service recorded about the order paid by hand, and who
    trail = subprocess.run([sys.executable, "-m", "shared.cli.main", "audit", "trail",
                            order_ids[1], "--json", "--data-dir", str(runtime.data_dir.root)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert trail.returncode == 0, trail.stdout + trail.stderr
    body = json.loads(trail.stdout)
    seen = [(e["service"], e["event_type"]) for e in body["events"]]
    for step in (("order", "order.placed"), ("inventory", "stock.reserved"),
                 ("billing", "invoice.issued"), ("reconcile", "bank_line.unmatched"),
                 ("reconcile", "bank_line.matched"), ("billing", "payment.recorded"),
                 ("order", "order.paid")):
        assert step in seen, (step, seen)
    assert seen.index(("reconcile", "bank_line.matched")) < seen.index(
        ("billing", "payment.recorded")) < seen.index(("order", "order.paid"))
    [by_hand] = [e for e in body["events"] if e["event_type"] == "bank_line.matched"]
    assert by_hand["actor"] == "user:fei.finance (finance)" and "refund it" in \
        by_hand["payload"]["reason"]
    [booked] = [e for e in body["events"] if e["event_type"] == "payment.recorded"]
    assert booked["caused_by"] == "reconcile bank_line.matched"
    assert body["intact"] is True
