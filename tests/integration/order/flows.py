"""Helpers for order-service flow tests: a running app, storefront messages and results injected."""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from services.order.app import make_app
from services.order.domain.lifecycle import order_id_for
from services.order.handlers import OrderDeps, handle
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import InvoiceIssued, Payload, StockReserved
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, STOREFRONT_ORDERS
from shared.demo.traffic import submission
from shared.inbox import IdempotentConsumer, Incoming, content_id
from shared.service import ServiceContext
from shared.settings import OmsSettings
from tests.conftest import running

RULES = Path(__file__).resolve().parents[3] / "deploy" / "approval-rules.example.toml"
START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def key(role: str) -> dict[str, str]:
    return {"X-API-Key": {"admin": "demo-admin", "sales": "demo-sales",
                          "sales_director": "demo-sales-director", "finance": "demo-finance",
                          "finance_director": "demo-finance-director", "general_manager": "demo-gm",
                          "warehouse": "demo-warehouse", "support": "demo-support",
                          "auditor": "demo-auditor"}[role]}


@dataclass
class Flow:
    client: httpx.AsyncClient
    ctx: ServiceContext
    clock: ManualClock

    @property
    def deps(self) -> OrderDeps:
        deps: OrderDeps = self.ctx.state["deps"]
        return deps

    async def deliver(self, *messages: Incoming) -> None:
        consumer = IdempotentConsumer(name="order", engine=self.ctx.engine, publisher=None,
                                      handle=partial(handle, self.deps))
        await consumer.process_incoming(list(messages))

    async def storefront(self, message: dict[str, Any]) -> None:
        value = json.dumps(message, ensure_ascii=False).encode()
        await self.deliver(Incoming(topic=STOREFRONT_ORDERS, partition=0, offset=0, key=None,
                                    value=value, headers={}, message_id=content_id(value)))

    async def result(self, payload: Payload) -> None:
        topic = INVENTORY_EVENTS if payload.event_type.startswith("stock.") else BILLING_EVENTS
        order_id = payload.order_id  # type: ignore[attr-defined]
        env = EventEnvelope(event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
                            stream_id=order_id, stream_version=1, occurred_at=self.clock.now(),
                            correlation_id=order_id, actor=SYSTEM, payload=payload.wire())
        await self.deliver(Incoming.from_envelope(env, topic))

    async def reserved(self, order_id: str) -> None:
        await self.result(StockReserved(order_id=order_id, lines=[]))

    async def settled(self, order_id: str) -> None:
        total = Decimal((await self.order(order_id))["order"]["total"])
        await self.result(InvoiceIssued(
            order_id=order_id, invoice_id=f"I-{order_id}", voucher_number="INV-2026-000001",
            currency="CNY", lines=[], net_total=total, tax_total=0, total=total, paid_total=total,
            outstanding=0, settled=True, issued_at=self.clock.now()))

    async def order(self, order_id: str, role: str = "admin") -> dict[str, Any]:
        response = await self.client.get(f"/orders/{order_id}", headers=key(role))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def status(self, order_id: str) -> str:
        return str((await self.order(order_id))["order"]["status"])

    async def post(self, path: str, role: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(path, headers=key(role), json=body or {})


def order_message(number: int, channel: str = "tmall", **overrides: Any) -> dict[str, Any]:
    message = submission(channel, number, rng=random.Random(number),
                         submitted_at=START - timedelta(minutes=5))
    message.update(overrides)
    return message


def order_of(message: dict[str, Any]) -> str:
    return order_id_for(message["channel"], message["channel_order_id"])


@contextlib.asynccontextmanager
async def order_service(database_url: str, kafka: str) -> AsyncIterator[Flow]:
    clock = ManualClock(START)
    settings = OmsSettings(kafka_bootstrap=kafka, kafka_idempotence=False, rules_file=RULES,
                           scheduler_seconds=3600)
    app = make_app(settings=settings, clock=clock, database_url=database_url)
    async with running(app) as client:
        yield Flow(client, app.state.ctx, clock)
