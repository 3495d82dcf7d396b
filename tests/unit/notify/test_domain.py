"""Notify's rule table, rendering and privacy masking, without a server."""

from __future__ import annotations

import pytest

from services.notify.domain import (
    RULES,
    NotificationRule,
    OrderCustomer,
    SourceEvent,
    allowed_fields,
    mask_email,
    mask_phone,
    masked_contact,
    notification_id,
    parse_recipient,
    plan_notifications,
    rules_for,
)
from tests.unit.reconcile.samples import (
    CUSTOMER,
    order_confirmed,
    order_paid,
    order_placed,
    stock_reserved,
    stock_shortage,
)

ORDER = "O-00000000000000AB"


def customer() -> OrderCustomer:
    return OrderCustomer.from_order_placed(order_placed(ORDER).wire())


def source(payload, event_id: str = "e-1") -> SourceEvent:
    return SourceEvent(event_id, payload.event_type, payload.wire())


def test_the_rules_named_in_the_flow():
    assert [(r.event_type, r.audience, r.channel) for r in RULES] == [
        ("order.confirmed", "customer", "inbox"),
        ("order.paid", "customer", "inbox"),
        ("stock.shortage", "warehouse", "inbox"),
    ]
    assert rules_for("stock.reserved") == []
    assert rules_for("order.placed") == []


def test_confirmation_goes_to_the_customer_of_the_order():
    [planned] = plan_notifications(source(order_confirmed(ORDER)), customer())
    assert planned.sent
    assert planned.recipient == "customer:C-1001"
    assert planned.channel == "inbox"
    assert planned.order_id == ORDER
    assert planned.subject == f"Your order TM-{ORDER[-6:]} is confirmed"
    assert "Dear 王芳" in planned.body
    assert "395.00 CNY" in planned.body
    assert ORDER in planned.body


def test_payment_received_names_the_amount_and_invoice():
    [planned] = plan_notifications(source(order_paid(ORDER)), customer())
    assert planned.recipient == "customer:C-1001"
    assert planned.subject.startswith("Payment received for order")
    assert "395.00 CNY" in planned.body
    assert "INV-2026-000001" in planned.body


def test_shortage_goes_to_the_warehouse_without_personal_data():
    [planned] = plan_notifications(source(stock_shortage(ORDER)), customer())
    assert planned.recipient == "role:warehouse"
    assert "X-100: requested 2, available 1" in planned.body
    assert "C-1001" in planned.body
    assert "w*@example.com" in planned.body
    for secret in (CUSTOMER["name"], CUSTOMER["email"], CUSTOMER["phone"], "文三路"):
        assert secret not in planned.body
        assert secret not in planned.subject


def test_shortage_before_the_order_is_known_still_reaches_the_warehouse():
    [planned] = plan_notifications(source(stock_shortage(ORDER)), None)
    assert planned.sent
    assert planned.recipient == "role:warehouse"
    assert "Customer unknown (unknown)" in planned.body


def test_a_customer_that_cannot_be_addressed_is_a_failure_not_a_silent_drop():
    [planned] = plan_notifications(source(order_confirmed(ORDER)), None)
    assert not planned.sent
    assert planned.recipient == "customer:unknown"
    assert "no order.placed seen" in (planned.failure or "")


def test_events_without_a_rule_plan_nothing():
    assert plan_notifications(source(stock_reserved(ORDER)), customer()) == []


def test_the_notification_id_is_stable_per_event_recipient_and_channel():
    first = plan_notifications(source(order_confirmed(ORDER), "e-1"), customer())[0]
    again = plan_notifications(source(order_confirmed(ORDER), "e-1"), customer())[0]
    other = plan_notifications(source(order_confirmed(ORDER), "e-2"), customer())[0]
    assert first.notification_id == again.notification_id
    assert first.notification_id != other.notification_id
    assert notification_id("e-1", "customer:C-1001", "inbox") == first.notification_id
    assert notification_id("e-1", "customer:C-1001", "email") != first.notification_id


def test_a_staff_template_may_not_name_the_customer():
    with pytest.raises(ValueError, match="customer_name"):
        NotificationRule(name="leaky", event_type="stock.shortage", audience="warehouse",
                         channel="inbox", subject="Short", body="Call {customer_name}")


def test_templates_take_plain_names_only():
    with pytest.raises(ValueError, match="plain name"):
        NotificationRule(name="sneaky", event_type="order.confirmed", audience="customer",
                         channel="inbox", subject="{order_id.__class__}", body="")
    with pytest.raises(ValueError, match="may not use"):
        NotificationRule(name="typo", event_type="order.confirmed", audience="customer",
                         channel="inbox", subject="{totl}", body="")


def test_the_customer_sees_their_name_staff_see_a_masked_contact():
    assert "customer_name" in allowed_fields("order.confirmed", "customer")
    assert "customer_name" not in allowed_fields("order.confirmed", "support")
    assert "customer_contact" in allowed_fields("stock.shortage", "warehouse")


@pytest.mark.parametrize(
    ("email", "masked"),
    [("wf@example.com", "w*@example.com"), ("alice@shop.cn", "a****@shop.cn"), ("a@b.c", "a*@b.c")],
)
def test_mask_email(email, masked):
    assert mask_email(email) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+8613800138000", "+*********8000"), ("138-0013-8000", "***-****-8000"), ("12345", "*****")],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_masked_contact_prefers_email_then_phone():
    assert masked_contact(None) == "unknown"
    phone_only = OrderCustomer.from_order_placed(
        order_placed(ORDER, {"id": "C-2", "name": "Li", "phone": "+8613900139000"}).wire()
    )
    assert masked_contact(phone_only) == "+*********9000"
    nothing = OrderCustomer.from_order_placed(order_placed(ORDER, {"id": "C-3", "name": "Li"}).wire())
    assert masked_contact(nothing) == "no contact on file"


@pytest.mark.parametrize(
    ("recipient", "parsed"),
    [("customer:C-1001", ("customer", "C-1001")), ("role:warehouse", ("role", "warehouse"))],
)
def test_parse_recipient(recipient, parsed):
    assert parse_recipient(recipient) == parsed


@pytest.mark.parametrize("recipient", ["C-1001", "user:x", "role:", "customer: "])
def test_parse_recipient_refuses(recipient):
    with pytest.raises(ValueError, match="must be"):
        parse_recipient(recipient)
