"""Fuzzing the order intake: 10,000 hypothesis-made storefront messages through the real handler
on a real database. Each is accepted or refused with reasons; nothing crashes; counts add up."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.order.domain.lifecycle import order_id_for
from services.order.handlers import handle
from shared.contract.topics import STOREFRONT_ORDERS
from shared.inbox import IdempotentConsumer, Incoming, content_id
from tests.integration.order.flows import order_message, order_service

MESSAGES = 10_000
BATCH = 500

NASTY_TEXT = st.sampled_from([
    "", " ", "'; DROP TABLE events; --", "' OR '1'='1", "1; SELECT pg_sleep(10)", "\" OR 1=1 --",
    "{{7*7}}", "${7*7}", "#{7*7}", "<%= 7*7 %>", "{% raw %}", "${jndi:ldap://x/a}", "%s%s%n%x",
    "<script>alert(1)</script>", "../../etc/passwd", "\x01\x7f", "\u202e\u202d", "\ud7ff\ufffd\uffff",
    "Z\u0351\u0360\u0361\u0489", "😀👩‍👩‍👧‍👦", "\u200b", "\n\r\t", "NaN", "Infinity", "-0",
    "1e309", "0x10", "١٢٣", "ＸＬ－１００", "X-100\x1b[31m", "A" * 10_000, "B" * 100_000,
]) | st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
NASTY_NUMBER = st.sampled_from([
    0, -1, -2**31, 2**31, 2**63, -(2**63), 10**30, 10**400, 0.1, -0.01, 1e308, 3.14159,
    float("inf"), float("-inf"), float("nan"), "-5", "1e3", "199.999", "0.001", "99999999999999999",
]) | st.integers() | st.floats()
NASTY = st.one_of(NASTY_TEXT, NASTY_NUMBER, st.none(), st.booleans(), st.just([]), st.just({}),
                  st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=5),
                                  st.integers(), max_size=2))
# NUL characters are generated too; lone surrogates and a `type` that is an object or array are
# covered by test_intake_known_bugs.py (found by this fuzzer, fixed).
FIELDS = ("type", "channel", "channel_order_id", "submitted_at", "order_type", "customer",
          "shipping_address", "lines", "discounts", "shipping_fee", "currency", "payment",
          "salesperson")
NESTED = {"customer": ("id", "name", "phone", "email", "tier"),
          "shipping_address": ("recipient", "phone", "country", "province", "city", "line1"),
          "payment": ("method", "terms"),
          "lines": ("sku", "quantity", "unit_price")}


@st.composite
def storefront_messages(draw: st.DrawFn) -> dict[str, Any] | bytes:
    number = draw(st.integers(1, 400)) if draw(st.booleans()) else draw(st.integers(401, 10**9))
    message = order_message(number, channel=draw(st.sampled_from(["tmall", "jd", "pdd", "web", "pos"])))
    message["channel_order_id"] = f"FUZZ-{number}"
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["set", "drop", "nested", "nested_drop", "type", "keep"]))
        field = draw(st.sampled_from(FIELDS))
        if what == "set":
            value = draw(NASTY)
            message[field] = "[]" if field == "type" and isinstance(value, list | dict) else value
        elif what == "drop":
            message.pop(field, None)
        elif what in ("nested", "nested_drop"):
            part = draw(st.sampled_from(sorted(NESTED)))
            inner = message.get(part)
            target = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(target, dict):
                name = draw(st.sampled_from(NESTED[part]))
                if what == "nested":
                    target[name] = draw(NASTY)
                else:
                    target.pop(name, None)
        elif what == "type":
            message["type"] = draw(st.sampled_from([
                "payment.captured", "order.cancellation_requested", "return.requested",
                "order.teleported", "ORDER.SUBMITTED"]))
    if draw(st.integers(0, 50)) == 0:
        return draw(st.sampled_from([b"{not json", b"[]", b"null", b"\xff\xfe", b"\x01", b"", b'"text"']))
    return message


def generate(count: int) -> list[bytes]:
    made: list[bytes] = []

    @settings(max_examples=count, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(storefront_messages())
    def collect(message: dict[str, Any] | bytes) -> None:
        if isinstance(message, bytes):
            made.append(message)
        else:
            made.append(json.dumps(message, ensure_ascii=False, allow_nan=True).encode())

    collect()
    # storefronts resend: exact copies of earlier messages, spread through the stream
    rng = random.Random(5)
    for _ in range(count // 50):
        made.insert(rng.randrange(len(made)), rng.choice(made))
    return made[: max(count, len(made))]


@pytest.mark.slow
async def test_ten_thousand_fuzzed_storefront_messages_are_each_accepted_or_refused(
        database_url: str, fresh_kafka: str) -> None:
    began = time.monotonic()
    values = generate(MESSAGES)
    print(f"generated {len(values)} in {time.monotonic() - began:.1f}s")
    assert len(values) >= MESSAGES
    async with order_service(database_url, fresh_kafka) as flow:
        consumer = IdempotentConsumer(name="order-fuzz", engine=flow.ctx.engine, publisher=None,
                                      handle=partial(handle, flow.deps))
        incoming = [Incoming(topic=STOREFRONT_ORDERS, partition=0, offset=i, key=None, value=v,
                             headers={}, message_id=content_id(v)) for i, v in enumerate(values)]
        for start in range(0, len(incoming), BATCH):
            await consumer.process_incoming(incoming[start:start + BATCH])

        async with flow.ctx.engine.connect() as conn:
            dead = (await conn.exec_driver_sql(
                "SELECT left(error, 120), count(*), min(left(convert_from(value, 'UTF8'), 300)) "
                "FROM dead_letters GROUP BY 1")).all()
            rows = (await conn.exec_driver_sql(
                "SELECT causation_id, event_type, payload, message_key FROM events "
                "WHERE causation_id IS NOT NULL")).all()
            inbox = (await conn.exec_driver_sql("SELECT count(*) FROM inbox")).scalar_one()
        summary = (await flow.client.get("/summary", headers={"X-API-Key": "demo-admin"})).json()

    assert dead == [], dead
    caused: dict[str, list[tuple[str, Any]]] = {}
    for cause, kind, payload, _ in rows:
        caused.setdefault(cause, []).append((kind, payload))
    placed_orders = {key for _, kind, _, key in rows if kind == "order.placed"}
    unique = {content_id(v): v for v in values}
    assert inbox == len(unique)
    outcome: Counter[str] = Counter()
    for message_id, value in unique.items():
        kinds = [kind for kind, _ in caused.get(str(message_id), [])]
        rejected = [p for kind, p in caused.get(str(message_id), []) if kind == "submission.rejected"]
        if rejected:
            assert kinds == ["submission.rejected"], (value[:300], kinds)
            reasons = rejected[0]["reasons"]
            assert reasons and all(r.get("field") and r.get("code") and r.get("message")
                                   for r in reasons), reasons
            outcome["rejected"] += 1
        elif "order.placed" in kinds:
            assert kinds.count("order.placed") == 1, kinds
            outcome["placed"] += 1
        elif kinds:
            outcome["accepted other"] += 1  # e.g. a payment on an order placed earlier
            assert "order.payment_captured" in kinds, (value[:300], kinds)
        else:  # no effect: only a resubmission of an order already placed with the same content
            raw = json.loads(value)
            assert raw["type"] == "order.submitted", value[:300]
            assert order_id_for(raw["channel"], raw["channel_order_id"]) in placed_orders, value[:300]
            outcome["duplicate"] += 1
    assert sum(outcome.values()) == len(unique)
    assert outcome["placed"] > 100 and outcome["rejected"] > 1000, outcome
    assert summary["orders"] == outcome["placed"] == len(placed_orders), (summary, outcome)
    assert summary["rejections"] == outcome["rejected"], (summary, outcome)
    assert len(values) - len(unique) >= MESSAGES // 50 - 5  # the exact copies were no-ops
    print(dict(outcome))
