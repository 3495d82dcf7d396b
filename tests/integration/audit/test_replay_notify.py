"""`oms replay notify --swap` on real PostgreSQL with a real HTTP receiver: notifications delivered
live are not delivered again by notify's sender once the replay is live; one still being retried
in live goes on with its attempts; ones still pending in live (never tried) are sent once. A replay
for a swap stops where the live service stands; a notification live never made is never sent."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store as notify_store
from services.notify.app import NOT_DELIVERED
from services.notify.channels import Channels
from services.notify.config import NotifyConfig, load_rules
from services.notify.handlers import make_handler
from services.notify.sender import Sender
from shared.audit.swap import SwapRefused, swap
from shared.clock import ManualClock
from shared.commitorder import read_all
from shared.db import create_engine
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
AUDIT = cli("shared.cli.audit")
SECRET = "replay-secret"

RULES = '''
version = "t1"

[[rule]]
name = "confirmed"
event = "order.confirmed"
recipients = ["customer"]
channels = ["inbox", "webhook"]
webhook_url = "{url}/hooks/orders"
subject = "Order {{{{ order_id }}}} confirmed"
body = "Thank you."

[[rule]]
name = "paid"
event = "order.paid"
recipients = ["role:finance"]
channels = ["inbox", "webhook"]
webhook_url = "{url}/fail"
subject = "Order {{{{ order_id }}}} paid"
body = "Paid."
'''

EXTRA_RULE = '''
[[rule]]
name = "confirmed-to-sales"
event = "order.confirmed"
recipients = ["role:sales"]
channels = ["inbox"]
subject = "Order {{{{ order_id }}}} confirmed (sales)"
body = "New."
'''


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A real HTTP server: (path, notification id) of every POST; ``/fail`` answers 500."""
    received: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, self.headers.get("X-OMS-Notification-Id", "")))
            self.send_response(500 if self.path == "/fail" else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    """Empty stores of the other producers notify listens to, plus the live notify store."""
    names = {s: f"t_{s}_{uuid.uuid4().hex[:8]}" for s in ("inventory", "billing", "reconcile",
                                                          "notify")}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    for service, url in urls.items():
        schema = notify_store.create_schema if service == "notify" else None
        await (await prepare_database(url, schema)).dispose()
    yield urls
    await drop(postgres_url, *names.values())


def notify_config(tmp_path: Path, url: str, extra: str = "") -> tuple[NotifyConfig, dict[str, str]]:
    rules = tmp_path / f"rules-{uuid.uuid4().hex[:6]}.toml"
    rules.write_text(RULES.format(url=url) + extra.format(url=url), encoding="utf-8")
    env = {"OMS_NOTIFY_RULES_FILE": str(rules), "OMS_WEBHOOK_SECRET": SECRET,
           "OMS_NOTIFY_MAX_ATTEMPTS": "3", "OMS_NOTIFY_RETRY_SECONDS": "10"}
    config = NotifyConfig(notify_rules_file=rules, webhook_secret=SECRET, notify_max_attempts=3,
                          notify_retry_seconds=10)
    return config, env


def sender(engine: AsyncEngine, config: NotifyConfig, clock: ManualClock) -> Sender:
    return Sender(engine, Channels(config, clock), clock, config.retry_policy())


async def live_notify(order: AsyncEngine, live_url: str, config: NotifyConfig,
                      handled: tuple[str, ...]) -> None:
    """The running notify service: it handled the events of the first order, its sender ran once
    (one webhook delivered, one failing: to be retried), then it handled the other ``handled``
    orders' events (their webhooks not tried yet). Other orders' events are still on their way."""
    clock = ManualClock(T0)
    engine = create_engine(live_url)
    handle = make_handler(clock, load_rules(config.notify_rules_file), config.delivery_setup())

    async def timed(conn: Any, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await handle(conn, incoming)

    consumer = IdempotentConsumer(name="notify", engine=engine, publisher=None, handle=timed)
    async with order.connect() as conn:
        events = [e.envelope for e in await read_all(conn)]
    for n, order_id in enumerate(handled):
        await consumer.process_incoming([Incoming.from_envelope(e, "oms.order.events.v1")
                                         for e in events if e.stream_id == order_id])
        if n == 0:
            clock.set(T0 + timedelta(minutes=5))
            assert await sender(engine, config, clock).send_due() == 2
    await engine.dispose()


async def states(url: str) -> dict[tuple[str, str, str], tuple[str, int]]:
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        found = (await conn.execute(text(
            "SELECT order_id, recipient, channel, status, attempts FROM notifications"))).all()
    await engine.dispose()
    return {(r.order_id, r.recipient, r.channel): (r.status, r.attempts) for r in found}


async def count(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        found = [tuple(r) for r in await conn.execute(text(sql))]
    await engine.dispose()
    return found


async def test_swapped_notify_sends_nothing_twice(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path, receiver: tuple[str, list[tuple[str, str]]]) -> None:
    url, received = receiver
    config, rules_env = notify_config(tmp_path, url)
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    live_url = stores["notify"]
    await live_notify(engine, live_url, config, handled=("O-1", "O-2"))
    before = await states(live_url)
    assert before == {("O-1", "customer:C-1001", "inbox"): ("sent", 0),
                      ("O-1", "customer:C-1001", "webhook"): ("sent", 1),
                      ("O-1", "role:finance", "inbox"): ("sent", 0),
                      ("O-1", "role:finance", "webhook"): ("pending", 1),  # retried in 10 s
                      ("O-2", "customer:C-1001", "inbox"): ("sent", 0),
                      ("O-2", "customer:C-1001", "webhook"): ("pending", 0),
                      ("O-2", "role:finance", "inbox"): ("sent", 0),
                      ("O-2", "role:finance", "webhook"): ("pending", 0)}
    assert sorted(p for p, _ in received) == ["/fail", "/hooks/orders"]

    env = database_env(tmp_path, order=database_url, **stores) | rules_env
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "notify", "--swap"], env)
        created += re.findall(r"into (oms_notify_replay_\d+)", result.output)
        assert result.exit_code == 0, result.output
        assert "6 events fed" in result.output
        kept = re.search(r"kept as\s+(oms_notify_before_replay_\d+)", result.output)
        assert kept, result.output
        created.append(kept.group(1))
        assert len(received) == 2  # a replay delivers nothing
        assert "the replay matches the live projections" in result.output, result.output
        assert await states(live_url) == before

        # notify's sender once on the swapped database, long after every retry was due
        swapped = create_engine(live_url)
        tried = await sender(swapped, config, ManualClock(T0 + timedelta(days=1))).send_due()
        await swapped.dispose()
        assert tried == 3  # O-1's retry, O-2's two webhooks (never tried live)
        delivered = [n for path, n in received if path == "/hooks/orders"]
        assert len(delivered) == len(set(delivered)) == 2  # nothing delivered a second time
        assert sorted(p for p, _ in received).count("/fail") == 3
        final = await states(live_url)
        assert final[("O-1", "role:finance", "webhook")] == ("pending", 2)  # attempt 2 of 3
        sent_twice = await count(live_url, "SELECT notification_id FROM delivery_attempts "
                                           "WHERE status = 'sent' GROUP BY 1 HAVING count(*) > 1")
        logged_twice = await count(live_url, "SELECT stream_id FROM events GROUP BY 1 "
                                             "HAVING count(*) > 1")
        assert sent_twice == [] and logged_twice == []
        verified = await invoke(AUDIT, ["audit", "verify", "--service", "notify"], env)
        assert verified.exit_code == 0, verified.output
    finally:
        await drop(postgres_url, *created)


async def test_a_replay_for_a_swap_stops_where_live_stands_and_never_delivers_what_live_did_not(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path, receiver: tuple[str, list[tuple[str, str]]]) -> None:
    """Rules changed since live handled O-1; O-2's events are not handled live yet. A full replay
    makes an extra notification for O-1 that is never delivered and cannot be swapped in (O-2's
    answers would be in no log); a replay for --swap leaves O-2's events to the live service."""
    url, received = receiver
    config, _ = notify_config(tmp_path, url)
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    live_url = stores["notify"]
    await live_notify(engine, live_url, config, handled=("O-1",))
    _, changed_env = notify_config(tmp_path, url, EXTRA_RULE)
    env = database_env(tmp_path, order=database_url, **stores) | changed_env
    extra = ("SELECT order_id, status, failure_reason FROM notifications "
             "WHERE rule = 'confirmed-to-sales' ORDER BY 1")
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "notify"], env)
        created += re.findall(r"into (oms_notify_replay_\d+)", result.output)
        assert result.exit_code == 1, result.output  # it differs (and says why it may)
        assert "6 events fed" in result.output and "left out" not in result.output
        assert "the replay differs from the live projections" in result.output
        assert "every event store is intact" in " ".join(result.output.split())
        full = with_database(postgres_url, created[0])
        assert await count(full, extra) == [("O-1", "failed", NOT_DELIVERED), ("O-2", "sent", None)]
        with pytest.raises(SwapRefused, match="has not handled 3 event"):
            await swap(live_url, full, "notify", 99)
        assert await count(live_url, "SELECT count(*) FROM notifications") == [(4,)]

        swapped = await invoke(APP, ["replay", "notify", "--swap"], env)
        created += re.findall(r"into (oms_notify_replay_\d+)", swapped.output)
        kept = re.search(r"kept as\s+(oms_notify_before_replay_\d+)", swapped.output)
        assert swapped.exit_code == 0 and kept, swapped.output
        created.append(kept.group(1))
        said = " ".join(swapped.output.split())
        assert "3 events fed" in said and "3 newer events the live service has not" in said
        assert await count(live_url, extra) == [("O-1", "failed", NOT_DELIVERED)]
        live = create_engine(live_url)
        tried = await sender(live, config, ManualClock(T0 + timedelta(days=1))).send_due()
        await live.dispose()
        assert tried == 1  # only O-1's webhook being retried
        assert sorted(p for p, _ in received) == ["/fail", "/fail", "/hooks/orders"]
    finally:
        await drop(postgres_url, *created)
