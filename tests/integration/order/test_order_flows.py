"""Order flows over HTTP and the storefront intake on real PostgreSQL: approvals, escalation,
shipping, role scoping, tracking, amendments, cancellations, returns, group buys, duplicates."""

from __future__ import annotations

from datetime import timedelta

from services.order.handlers.scheduler import complete_delivered, escalate_overdue
from tests.integration.order.flows import START, key, order_message, order_of, order_service

BIG = [{"sku": "X-100", "quantity": 600, "unit_price": "199.00"}]  # 119,400.00: two approval levels


async def test_two_level_approval_roles_and_escalation(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        big = order_message(1, lines=BIG, discounts=[])
        await flow.storefront(big)
        order_id = order_of(big)
        assert await flow.status(order_id) == "pending_approval"
        detail = await flow.order(order_id)
        assert detail["approval"]["rule_id"] == "large-orders"
        assert detail["approval"]["rules_version"] == "2026-11-01"
        inbox = (await flow.client.get("/approvals", headers=key("sales_director"))).json()
        assert [a["order_id"] for a in inbox["approvals"]] == [order_id]

        wrong = await flow.post(f"/orders/{order_id}/approvals/approve", "finance_director")
        assert wrong.status_code == 403 and "sales_director" in wrong.json()["detail"]
        first = await flow.post(f"/orders/{order_id}/approvals/approve", "sales_director",
                                {"comment": "known customer"})
        assert first.status_code == 200 and first.json()["approval"]["level"] == 1
        await flow.reserved(order_id)
        assert await flow.status(order_id) == "pending_approval"  # reserved, still one level to go

        flow.clock.advance(timedelta(hours=4, minutes=5))
        assert await escalate_overdue(flow.deps, flow.ctx.engine) == 1
        assert await escalate_overdue(flow.deps, flow.ctx.engine) == 0  # once per SLA period
        gm_inbox = (await flow.client.get("/approvals", headers=key("general_manager"))).json()
        assert [a["order_id"] for a in gm_inbox["approvals"]] == [order_id]
        done = await flow.post(f"/orders/{order_id}/approvals/approve", "general_manager")
        assert done.status_code == 200
        events = [e["event_type"] for e in (await flow.order(order_id))["events"]]
        assert events == ["order.placed", "order.approval_requested", "order.approved",
                          "order.approval_requested", "order.approval_escalated", "order.approved",
                          "order.confirmed"]
        again = await flow.post(f"/orders/{order_id}/approvals/approve", "admin")
        assert again.status_code == 409
        assert again.json()["detail"]["status"] == "confirmed"
        assert "cancel" in again.json()["detail"]["allowed_actions"]


async def test_rejected_approval_cancels(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        big = order_message(2, lines=BIG, discounts=[])
        await flow.storefront(big)
        response = await flow.post(f"/orders/{order_of(big)}/approvals/reject", "sales_director",
                                   {"reason": "credit limit"})
        assert response.status_code == 200
        assert await flow.status(order_of(big)) == "cancelled"
        bad = await flow.post(f"/orders/{order_of(big)}/approvals/reject", "sales_director", {})
        assert bad.status_code == 422


async def test_ship_deliver_complete_with_warehouse_scoping_and_customer_tracking(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        message = order_message(3, lines=[
            {"sku": "X-100", "quantity": 2, "unit_price": "199.00", "gift_bundle": "B1"},
            {"sku": "GIFT-MUG", "quantity": 1, "unit_price": "0.00", "gift_bundle": "B1"},
            {"sku": "TEA-500", "quantity": 2, "unit_price": "88.00"}], discounts=[])
        await flow.storefront(message)
        order_id = order_of(message)
        await flow.reserved(order_id)
        assert await flow.status(order_id) == "confirmed"
        hidden = await flow.client.get(f"/orders/{order_id}", headers=key("warehouse"))
        assert hidden.status_code == 403  # prepaid and not paid: not ready to ship
        early = await flow.post(f"/orders/{order_id}/shipments", "warehouse",
                                {"warehouse": "WH-HZ", "carrier": "SF", "tracking_number": "SF1"})
        assert early.status_code == 409 and "payment outstanding" in early.json()["detail"]["message"]
        await flow.settled(order_id)
        seen = await flow.order(order_id, role="warehouse")
        assert "total" not in seen["order"] and "unit_price" not in seen["lines"][0]
        assert all(e["event_type"] != "order.paid" for e in seen["events"])
        listed = (await flow.client.get("/orders", headers=key("warehouse"))).json()
        assert [o["order_id"] for o in listed["orders"]] == [order_id] and "total" not in listed["orders"][0]

        split = await flow.post(f"/orders/{order_id}/shipments", "warehouse", {
            "warehouse": "WH-HZ", "carrier": "SF", "tracking_number": "SF1",
            "lines": [{"sku": "x100", "quantity": 2}]})
        assert split.status_code == 422 and split.json()["detail"][0]["type"] == "bundle_split"
        sales = await flow.post(f"/orders/{order_id}/shipments", "sales",
                                {"warehouse": "W", "carrier": "SF", "tracking_number": "1"})
        assert sales.status_code == 403 and "warehouse" in sales.json()["detail"]
        part = await flow.post(f"/orders/{order_id}/shipments", "warehouse", {
            "warehouse": "WH-HZ", "carrier": "SF", "tracking_number": "SF1",
            "lines": [{"sku": "TEA-500", "quantity": 1}]})
        assert part.json()["status"] == "partially_shipped"
        rest = await flow.post(f"/orders/{order_id}/shipments", "warehouse",
                               {"warehouse": "WH-HZ", "carrier": "SF", "tracking_number": "SF2"})
        assert rest.json()["status"] == "shipped"
        cancel = await flow.post(f"/orders/{order_id}/cancel", "sales", {"reason": "too late"})
        assert cancel.status_code == 409 and cancel.json()["detail"]["status"] == "shipped"
        assert (await flow.post(f"/orders/{order_id}/delivery", "warehouse")).status_code == 200

        token = (await flow.order(order_id))["tracking_token"]
        tracked = (await flow.client.get(f"/track/{order_id}", params={"token": token})).json()
        assert tracked["status"] == "delivered" and len(tracked["shipments"]) == 2
        assert tracked["ship_to"]["recipient"].endswith("*") and "line1" not in tracked["ship_to"]
        assert "*" in tracked["ship_to"]["phone"]
        wrong = await flow.client.get(f"/track/{order_id}", params={"token": "0" * 24})
        assert wrong.status_code == 404

        assert await complete_delivered(flow.deps, flow.ctx.engine) == 0
        flow.clock.advance(timedelta(days=8))
        assert await complete_delivered(flow.deps, flow.ctx.engine) == 1
        assert await flow.status(order_id) == "completed"


async def test_storefront_amendments_cancellations_and_returns(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        message = order_message(4, lines=[{"sku": "TEA-500", "quantity": 2, "unit_price": "88.00"}],
                                discounts=[], shipping_fee="12.00")
        order_id = order_of(message)
        await flow.storefront(message)
        request = {"type": "order.amendment_requested", "channel": "tmall",
                   "channel_order_id": message["channel_order_id"], "request_id": "AM-1",
                   "requested_at": START.isoformat(),
                   "lines": [{"sku": "tea 500", "quantity": 3, "unit_price": "88.00"}]}
        await flow.storefront(request)
        detail = await flow.order(order_id)
        assert detail["events"][-1]["event_type"] == "order.amended"
        assert detail["events"][-1]["payload"]["before"]["total"] == "188.00"
        assert detail["order"]["total"] == "276.00"  # 3 x 88.00 + 12.00 shipping

        await flow.reserved(order_id)
        await flow.storefront({**request, "request_id": "AM-2",
                               "lines": [{"sku": "TEA-500", "quantity": 1, "unit_price": "88.00"}]})
        detail = await flow.order(order_id)
        assert detail["approval"]["kind"] == "amendment" and detail["order"]["status"] == "confirmed"
        await flow.post(f"/orders/{order_id}/approvals/approve", "sales_director")
        assert (await flow.order(order_id))["order"]["total"] == "100.00"

        await flow.settled(order_id)
        await flow.post(f"/orders/{order_id}/shipments", "warehouse",
                        {"warehouse": "WH", "carrier": "SF", "tracking_number": "SF9"})
        await flow.storefront({"type": "order.cancellation_requested", "channel": "tmall",
                               "channel_order_id": message["channel_order_id"], "request_id": "CX-1",
                               "reason": "changed my mind", "requested_at": START.isoformat()})
        rejections = (await flow.client.get("/rejections", headers=key("admin"))).json()["rejections"]
        assert rejections[0]["reasons"][0]["code"] == "illegal_transition"
        assert "shipped" in rejections[0]["reasons"][0]["message"]
        late_amendment = {**request, "request_id": "AM-3"}
        await flow.storefront(late_amendment)
        assert (await flow.order(order_id))["events"][-1]["event_type"] == "order.amendment_refused"

        await flow.storefront({"type": "return.requested", "channel": "tmall",
                               "channel_order_id": message["channel_order_id"], "request_id": "RT-1",
                               "lines": [{"sku": "TEA-500", "quantity": 1}], "reason": "damaged",
                               "requested_at": START.isoformat()})
        assert await flow.status(order_id) == "return_requested"
        received = await flow.post(f"/orders/{order_id}/returns/RT-1/receive", "warehouse",
                                   {"warehouse": "WH-HZ"})
        assert received.json()["status"] == "returned"


async def test_cancellation_before_shipment_and_http_amend_validation(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        message = order_message(5)
        order_id = order_of(message)
        await flow.storefront(message)
        bad = await flow.post(f"/orders/{order_id}/amend", "sales",
                              {"lines": [{"sku": "NOPE-1", "quantity": 1, "unit_price": "1.00"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["type"] == "unknown_sku"
        await flow.storefront({"type": "order.cancellation_requested", "channel": "tmall",
                               "channel_order_id": message["channel_order_id"], "request_id": "CX-2",
                               "reason": "found it cheaper", "requested_at": START.isoformat()})
        detail = await flow.order(order_id)
        assert detail["order"]["status"] == "cancelled"
        assert detail["events"][-1]["payload"]["stage"] == "placed"


async def test_group_buy_confirms_all_members_when_the_group_closes(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        members = [order_message(10 + n, order_type="group_buy",
                                 group_buy={"group_id": "GB-7", "size": 3}) for n in range(3)]
        for member in members[:2]:
            await flow.storefront(member)
            await flow.reserved(order_of(member))
        assert [await flow.status(order_of(m)) for m in members[:2]] == ["placed", "placed"]
        await flow.storefront(members[2])
        await flow.reserved(order_of(members[2]))
        assert [await flow.status(order_of(m)) for m in members] == ["confirmed"] * 3


async def test_likely_cross_channel_duplicate_is_accepted_but_flagged(database_url, fresh_kafka):
    async with order_service(database_url, fresh_kafka) as flow:
        first = order_message(20, channel="tmall")
        twin = {**first, "channel": "jd", "channel_order_id": "JD-TWIN-1",
                "lines": list(reversed(first["lines"]))}
        await flow.storefront(first)
        await flow.storefront(twin)
        flagged = await flow.order(order_of(twin))
        assert flagged["order"]["flags"] == [f"possible_duplicate_of:{order_of(first)}"]
        assert flagged["events"][0]["payload"]["flags"] == flagged["order"]["flags"]
        found = (await flow.client.get("/orders", params={"flag": "possible_duplicate_of"},
                                       headers=key("support"))).json()
        assert [o["order_id"] for o in found["orders"]] == [order_of(twin)]
        assert (await flow.order(order_of(first)))["order"]["flags"] == []
