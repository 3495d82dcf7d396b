"""Delivery over real channels: a real SMTP server, a real HTTP server for signed webhooks and
WeCom / DingTalk-shaped robots; retries on the injected clock; a failing channel next to
working ones; a replay that sends nothing new."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store
from services.notify.channels import Channels, dingtalk_sign
from services.notify.config import NotifyConfig, load_rules
from services.notify.handlers import make_handler
from services.notify.sender import Sender
from shared.clock import ManualClock
from shared.contract.payloads import DiscrepancyDetected
from shared.inbox import IdempotentConsumer
from shared.service import prepare_database
from tests.integration.notify.conftest import HttpServer, SmtpServer, free_port
from tests.unit.reconcile.samples import (
    AT,
    envelope,
    incoming,
    new_order_id,
    order_confirmed,
    order_placed,
    stock_shortage,
)

SECRET = "webhook-secret"
DING_SECRET = "SEC-ding"

RULES = '''
[staff_email]
finance = "finance@example.com"

[[rule]]
name = "confirmed"
event = "order.confirmed"
recipients = ["customer"]
channels = ["inbox", "email", "webhook"]
webhook_url = "{http}/hooks/orders"
subject = "Your order {{{{ channel_order_id }}}} is confirmed"
body = "Dear {{{{ customer_name }}}}, {{{{ total }}}} {{{{ currency }}}}."

[[rule]]
name = "shortage"
event = "stock.shortage"
recipients = ["role:warehouse"]
channels = ["wecom", "dingtalk"]
wecom_url = "{http}/cgi-bin/webhook/send?key=abc"
dingtalk_url = "{http}/robot/send?access_token=t0"
subject = "Short {{{{ order_id }}}}"
body = "{{{{ missing_lines }}}} for {{{{ customer_contact }}}}"

[[rule]]
name = "discrepancy"
event = "discrepancy.detected"
recipients = ["role:finance"]
channels = ["inbox", "email", "webhook"]
webhook_url = "{http}/fail"
subject = "Discrepancy {{{{ kind }}}}"
body = "{{{{ expected }}}} / {{{{ actual }}}}"
'''


@pytest_asyncio.fixture
async def notify_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepare_database(database_url, store.create_schema)
    yield engine
    await engine.dispose()


class Harness:
    def __init__(self, engine: AsyncEngine, config: NotifyConfig, clock: ManualClock) -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self.rules = load_rules(config.notify_rules_file)
        self.sender = Sender(engine, Channels(config, clock), clock, config.retry_policy())

    def consumer(self, name: str = "notify") -> IdempotentConsumer:
        return IdempotentConsumer(name=name, engine=self.engine, publisher=None,
                                  handle=make_handler(self.clock, self.rules,
                                                      self.config.delivery_setup()))

    async def rows(self, sql: str) -> list:
        async with self.engine.connect() as conn:
            return list(await conn.execute(text(sql)))

    async def status(self) -> dict[tuple[str, str, str], tuple[str, int]]:
        found = await self.rows("SELECT * FROM notifications")
        return {(r.source_event_type, r.recipient, r.channel): (r.status, r.attempts) for r in found}


def harness(engine: AsyncEngine, tmp_path: Path, smtp: SmtpServer, http: HttpServer,
            rules_text: str = RULES, **overrides) -> Harness:
    rules = tmp_path / "rules.toml"
    rules.write_text(rules_text.format(http=http.url), encoding="utf-8")
    settings = {"notify_rules_file": rules, "smtp_host": smtp.host, "smtp_port": smtp.port,
                "smtp_from": "shop@example.com", "webhook_secret": SECRET,
                "dingtalk_secret": DING_SECRET, "notify_max_attempts": 3,
                "notify_retry_seconds": 10, **overrides}
    return Harness(engine, NotifyConfig(**settings), ManualClock(AT))


async def test_email_webhook_and_robots_reach_real_servers(notify_engine, tmp_path, smtp_server,
                                                          http_server):
    h = harness(notify_engine, tmp_path, smtp_server, http_server)
    order_id = new_order_id()
    confirmed = envelope(order_confirmed(order_id))
    await h.consumer().process_incoming([incoming(envelope(order_placed(order_id))),
                                         incoming(confirmed),
                                         incoming(envelope(stock_shortage(order_id)))])
    assert await h.status() == {
        ("order.confirmed", "customer:C-1001", "inbox"): ("sent", 0),
        ("order.confirmed", "customer:C-1001", "email"): ("pending", 0),
        ("order.confirmed", "customer:C-1001", "webhook"): ("pending", 0),
        ("stock.shortage", "role:warehouse", "wecom"): ("pending", 0),
        ("stock.shortage", "role:warehouse", "dingtalk"): ("pending", 0),
    }
    assert smtp_server.mailbox.mails == [] and http_server.received == []  # nothing before commit

    assert await h.sender.send_due() == 4
    assert {k: v[0] for k, v in (await h.status()).items()} == dict.fromkeys(await h.status(), "sent")

    [mail] = smtp_server.mailbox.mails
    assert smtp_server.mailbox.recipients == [["wf@example.com"]]
    assert mail["From"] == "shop@example.com" and mail["To"] == "wf@example.com"
    assert mail["Subject"] == f"Your order TM-{order_id[-6:]} is confirmed"
    assert "Dear 王芳, 395.00 CNY." in mail.get_content()

    [hook] = http_server.on("/hooks/orders")
    expected = "sha256=" + hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-oms-signature"] == expected
    assert hook.json()["event_type"] == "order.confirmed"
    assert hook.json()["source_event_id"] == str(confirmed.event_id)
    assert hook.json()["order_id"] == order_id

    [wecom] = http_server.on("/cgi-bin/webhook/send")
    assert wecom.query == {"key": "abc"}
    assert wecom.json() == {"msgtype": "text", "text": {"content": (
        f"Short {order_id}\n\n- X-100: requested 2, available 1 for w*@example.com")}}
    [ding] = http_server.on("/robot/send")
    timestamp = int(AT.timestamp() * 1000)
    assert ding.query == {"access_token": "t0", "timestamp": str(timestamp),
                          "sign": dingtalk_sign(DING_SECRET, timestamp)}
    assert ding.json()["msgtype"] == "text" and "X-100" in ding.json()["text"]["content"]

    events = await h.rows("SELECT event_type, payload FROM events ORDER BY position")
    assert sorted((e.payload["source_event_type"], e.payload["channel"]) for e in events) == [
        ("order.confirmed", "email"), ("order.confirmed", "inbox"), ("order.confirmed", "webhook"),
        ("stock.shortage", "dingtalk"), ("stock.shortage", "wecom")]
    assert {e.event_type for e in events} == {"notification.sent"}
    attempts = await h.rows("SELECT status FROM delivery_attempts")
    assert sorted(a.status for a in attempts) == ["sent"] * 5


async def test_a_failing_channel_is_retried_then_failed_while_the_others_succeed(
        notify_engine, tmp_path, smtp_server, http_server):
    h = harness(notify_engine, tmp_path, smtp_server, http_server)
    order_id = new_order_id()
    found = envelope(DiscrepancyDetected(order_id=order_id, kind="confirmed_no_invoice",
                                         expected="1 invoice", actual="none", since=AT))
    await h.consumer().process_incoming([incoming_on_reconcile(found)])

    assert await h.sender.send_due() == 2  # email and the webhook (the inbox is done)
    assert await h.status() == {
        ("discrepancy.detected", "role:finance", "inbox"): ("sent", 0),
        ("discrepancy.detected", "role:finance", "email"): ("sent", 1),
        ("discrepancy.detected", "role:finance", "webhook"): ("pending", 1),
    }
    assert smtp_server.mailbox.recipients == [["finance@example.com"]]
    assert await h.sender.send_due() == 0  # not due yet: backoff on the injected clock
    h.clock.advance(timedelta(seconds=10))
    assert await h.sender.send_due() == 1
    assert await h.sender.send_due() == 0
    h.clock.advance(timedelta(seconds=19))
    assert await h.sender.send_due() == 0  # the second wait is 20 seconds
    h.clock.advance(timedelta(seconds=1))
    assert await h.sender.send_due() == 1
    assert (await h.status())[("discrepancy.detected", "role:finance", "webhook")] == ("failed", 3)
    assert len(http_server.on("/fail")) == 3

    [failed] = await h.rows("SELECT * FROM events WHERE event_type = 'notification.failed'")
    reason = failed.payload["reason"]
    assert reason.startswith(f"POST {http_server.url}/fail: HTTP 500")
    assert reason.endswith("(gave up after 3 attempts)")
    assert failed.message_key == order_id
    sent = await h.rows("SELECT payload FROM events WHERE event_type = 'notification.sent'")
    assert sorted(e.payload["channel"] for e in sent) == ["email", "inbox"]
    attempts = await h.rows("SELECT attempt, status, error FROM delivery_attempts "
                            "WHERE error IS NOT NULL ORDER BY attempt")
    assert [(a.attempt, a.status) for a in attempts] == [(1, "retry"), (2, "retry"), (3, "failed")]
    async with h.engine.connect() as conn:
        summary = await store.summary(conn)
    assert (summary["notifications_sent"], summary["failed"], summary["pending"]) == (2, 1, 0)
    assert summary["by_channel"] == {"email": 1, "inbox": 1}


async def test_a_closed_port_and_a_refusing_robot_are_failures_with_the_reason(
        notify_engine, tmp_path, smtp_server, http_server):
    closed = f"http://127.0.0.1:{free_port()}"
    robots = f"""
[[rule]]
name = "shortage"
event = "stock.shortage"
recipients = ["role:warehouse"]
channels = ["wecom", "dingtalk"]
dingtalk_url = "{closed}/robot/send"
subject = "Short"
body = "{{{{{{{{ missing_lines }}}}}}}}"
"""
    # the WeCom URL from the environment (OMS_NOTIFY_WECOM_URL), as a rule may leave it out
    h = harness(notify_engine, tmp_path, smtp_server, http_server, robots, notify_max_attempts=1,
                notify_wecom_url=f"{http_server.url}/refuse")
    order_id = new_order_id()
    await h.consumer().process_incoming([incoming(envelope(stock_shortage(order_id)))])
    assert await h.sender.send_due() == 2
    failures = {r.channel: r.failure_reason for r in await h.rows("SELECT * FROM notifications")}
    assert failures["wecom"] == ("wecom robot refused: errcode 310000: sign not match "
                                 "(gave up after 1 attempt)")
    assert failures["dingtalk"].startswith(f"POST {closed}/robot/send")
    assert "ConnectError" in failures["dingtalk"]


async def test_a_replay_sends_nothing_new(notify_engine, tmp_path, smtp_server, http_server):
    h = harness(notify_engine, tmp_path, smtp_server, http_server)
    order_id = new_order_id()
    batch = [incoming(envelope(order_placed(order_id))), incoming(envelope(order_confirmed(order_id)))]
    await h.consumer().process_incoming(batch)
    await h.sender.send_due()
    assert len(smtp_server.mailbox.mails) == 1 and len(http_server.received) == 1
    events_before = len(await h.rows("SELECT 1 FROM events"))

    await h.consumer().process_incoming(batch)  # redelivery
    async with h.engine.begin() as conn:  # replay with no memory of what was processed
        await conn.execute(text("DELETE FROM inbox"))
    await h.consumer("notify-replay").process_incoming(batch + batch)  # and a republish
    async with h.engine.begin() as conn:  # `oms replay notify`: the projection rebuilt
        await conn.execute(text("DELETE FROM notifications"))
        await conn.execute(text("DELETE FROM inbox"))
    await h.consumer().process_incoming(batch)
    h.clock.advance(timedelta(hours=2))
    assert await h.sender.send_due() == 0

    assert len(smtp_server.mailbox.mails) == 1 and len(http_server.received) == 1
    assert len(await h.rows("SELECT 1 FROM events")) == events_before == 3
    assert {v for v in (await h.status()).values()} == {("sent", 0)}


def incoming_on_reconcile(event):
    from shared.inbox import Incoming

    return Incoming.from_envelope(event, "oms.reconcile.events.v1", offset=0)
