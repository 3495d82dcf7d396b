"""Who is told what: matching rules, rendering, privacy, channel fallback, retries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.notify.config import EXAMPLE_RULES, load_rules
from services.notify.domain import (
    DeliverySetup,
    OrderCustomer,
    RetryPolicy,
    SourceEvent,
    mask_email,
    mask_phone,
    masked_contact,
    notification_id,
    parse_recipient,
    parse_rules,
    plan_notifications,
)
from shared.contract.fulfilment_events import RefundIssued
from shared.contract.order_events import OrderApprovalEscalated, OrderApprovalRequested, OrderShipped
from shared.contract.payloads import DiscrepancyDetected, OrderBackordered, SkuQuantity
from tests.unit.reconcile.samples import (
    AT,
    CUSTOMER,
    order_confirmed,
    order_paid,
    order_placed,
    stock_reserved,
    stock_shortage,
)

ORDER = "O-00000000000000AB"
RULES = load_rules(EXAMPLE_RULES)
SECRETS = (CUSTOMER["name"], CUSTOMER["email"], CUSTOMER["phone"], "文三路", "杭州市")


def customer() -> OrderCustomer:
    return OrderCustomer.from_order_placed(order_placed(ORDER).wire())


def source(payload, event_id: str = "e-1") -> SourceEvent:
    return SourceEvent(event_id, payload.event_type, payload.wire())


def plan(payload, who=None, rules=RULES, setup=None, event_id="e-1"):
    return plan_notifications(source(payload, event_id), who, rules, setup)


def shipped() -> OrderShipped:
    return OrderShipped(order_id=ORDER, shipment_id="S-1", warehouse="HZ-1", carrier="SF Express",
                        tracking_number="SF1234567890", lines=[], complete=True, shipped_at=AT)


def approval_requested() -> OrderApprovalRequested:
    return OrderApprovalRequested(order_id=ORDER, rule_id="large", rules_version="v1", level=0,
                                  levels=2, role="sales_director", sla_seconds=3600, due_at=AT,
                                  escalate_to="general_manager", reasons=["total >= 100000"])


def test_confirmation_goes_to_the_customers_inbox_when_email_is_not_set_up():
    result = plan(order_confirmed(ORDER), customer())
    [planned] = result.notifications
    assert (planned.recipient, planned.channel, planned.target) == ("customer:C-1001", "inbox",
                                                                     "customer:C-1001")
    assert planned.deliverable and planned.order_id == ORDER
    assert planned.subject == f"Your order TM-{ORDER[-6:]} is confirmed"
    assert "Dear 王芳" in planned.body and "395.00 CNY" in planned.body
    assert result.fallbacks == ["rule order-confirmed-to-customer: email is not set up "
                                "(OMS_SMTP_HOST unset); sending to inbox instead"]


def test_with_smtp_the_customer_gets_inbox_and_email_at_their_own_address():
    inbox, email = plan(order_confirmed(ORDER), customer(), setup=DeliverySetup(email=True)).notifications
    assert (inbox.channel, email.channel) == ("inbox", "email")
    assert email.target == "wf@example.com"
    assert email.notification_id == notification_id("e-1", "customer:C-1001", "email")
    assert email.notification_id != inbox.notification_id


def test_a_customer_without_email_is_a_failure_of_that_channel_only():
    no_mail = OrderCustomer.from_order_placed(order_placed(ORDER, {"id": "C-9", "name": "Li"}).wire())
    inbox, email = plan(order_paid(ORDER), no_mail, setup=DeliverySetup(email=True)).notifications
    assert inbox.deliverable
    assert email.failure == "customer C-9 has no email address on file"


def test_shipped_names_carrier_and_tracking_and_the_html_part_is_escaped():
    rules = parse_rules(RULES_WITH_HTML)
    evil = OrderCustomer.from_order_placed(order_placed(ORDER, {"id": "C-1", "name": "<b>Eve</b>",
                                                               "email": "e@x.cn"}).wire())
    inbox, email = plan(shipped(), evil, rules, DeliverySetup(email=True)).notifications
    assert "SF Express" in inbox.body and "SF1234567890" in inbox.body
    assert inbox.html_body is None
    assert email.html_body == "<p>Hi &lt;b&gt;Eve&lt;/b&gt;: SF1234567890</p>"
    assert "Hi <b>Eve</b>" in email.body  # the text part is plain text


RULES_WITH_HTML = '''
[[rule]]
name = "shipped"
event = "order.shipped"
recipients = ["customer"]
channels = ["inbox", "email"]
subject = "Shipped with {{ carrier }}"
body = "Hi {{ customer_name }}: {{ carrier }} {{ tracking_number }}"
html_body = "<p>Hi {{ customer_name }}: {{ tracking_number }}</p>"
'''


def test_customer_messages_for_delivery_refund_and_delay():
    from shared.contract.order_events import OrderDelivered

    delivered = plan(OrderDelivered(order_id=ORDER, delivered_at=AT), customer()).notifications[0]
    assert "was delivered" in delivered.subject
    refund = RefundIssued(order_id=ORDER, refund_id="R-1", credit_note_voucher_number="CN-2026-000001",
                          method="alipay", amount=Decimal("395.00"), currency="CNY", issued_at=AT)
    [refunded] = plan(refund, customer()).notifications
    assert refunded.subject.startswith("Refund of 395.00 CNY") and "CN-2026-000001" in refunded.body
    delayed = OrderBackordered(order_id=ORDER, missing=[SkuQuantity(sku="X-100", quantity=1)])
    [late] = plan(delayed, customer()).notifications
    assert "is delayed" in late.subject and "- X-100: 1" in late.body


def test_shortage_goes_to_the_warehouse_with_a_masked_contact_and_no_address():
    [planned] = plan(stock_shortage(ORDER), customer()).notifications  # wecom has no URL: inbox
    assert planned.recipient == "role:warehouse"
    assert "X-100: requested 2, available 1" in planned.body
    assert "C-1001" in planned.body and "w*@example.com" in planned.body
    for secret in SECRETS:
        assert secret not in planned.body and secret not in planned.subject


def test_the_shortage_robot_is_used_when_it_has_a_url():
    setup = DeliverySetup(default_urls={"wecom": "http://robot.example/send"})
    inbox, robot = plan(stock_shortage(ORDER), customer(), setup=setup).notifications
    assert (robot.channel, robot.target) == ("wecom", "http://robot.example/send")
    assert robot.body == inbox.body


def test_approvals_go_to_the_levels_role_and_escalations_to_escalate_to():
    [waiting] = plan(approval_requested(), customer()).notifications
    assert waiting.recipient == "role:sales_director"
    assert "level 1 of 2" in waiting.subject and "general_manager" in waiting.body
    escalated = OrderApprovalEscalated(
        order_id=ORDER, rule_id="large", rules_version="v1", level=0, levels=2, role="sales_director",
        escalate_to="general_manager", due_at=AT, escalated_at=AT, escalations=1)
    setup = DeliverySetup(email=True)
    inbox, email = plan(escalated, customer(), setup=setup).notifications  # dingtalk: no URL
    assert inbox.recipient == email.recipient == "role:general_manager"
    assert email.target == "gm@example.com"


def test_staff_without_an_address_get_a_clear_failure_for_email():
    rules = parse_rules(RULES_WITH_HTML.replace("order.shipped", "order.approval_requested")
                        .replace('["customer"]', '["approver"]').replace("customer_name", "role")
                        .replace("carrier", "rule_id").replace("tracking_number", "level"))
    _, email = plan(approval_requested(), customer(), rules, DeliverySetup(email=True)).notifications
    assert email.failure == ("no email address for role sales_director: add it under [staff_email] "
                             "in the rules file")


def test_discrepancies_reach_finance_and_auditors():
    found = DiscrepancyDetected(order_id=ORDER, kind="confirmed_no_invoice", expected="1 invoice",
                                actual="none", since=AT)
    planned = plan(found, None).notifications
    assert [(p.recipient, p.channel) for p in planned] == [("role:finance", "inbox"),
                                                           ("role:auditor", "inbox")]
    assert "Expected: 1 invoice" in planned[0].body


def test_a_customer_that_cannot_be_addressed_is_a_failure_not_a_silent_drop():
    [planned] = plan(order_confirmed(ORDER), None).notifications
    assert planned.recipient == "customer:unknown"
    assert "no order.placed seen" in (planned.failure or "")


def test_strict_undefined_errors_surface_as_a_clear_failure():
    rules = parse_rules(RULES_WITH_HTML.replace("{{ carrier }} {{ tracking_number }}",
                                                "{{ lines[0].sku }}"))
    [planned, _] = plan(shipped(), customer(), rules, DeliverySetup(email=True)).notifications
    assert planned.failure == ("rule shipped: template could not be rendered: UndefinedError: "
                               "list object has no element 0")


def test_the_sandbox_refuses_reaching_into_python():
    rules = parse_rules(RULES_WITH_HTML.replace("{{ carrier }} {{ tracking_number }}",
                                                "{{ carrier.__class__.__mro__ }}"))
    [planned] = plan(shipped(), customer(), rules).notifications
    assert planned.failure == ("rule shipped: template could not be rendered: SecurityError: "
                               "access to attribute '__class__' of 'str' object is unsafe.")


def test_events_without_a_rule_plan_nothing():
    assert plan(stock_reserved(ORDER), customer()).notifications == []


def test_the_notification_id_is_stable_per_event_recipient_and_channel():
    first = plan(order_confirmed(ORDER), customer()).notifications[0]
    again = plan(order_confirmed(ORDER), customer()).notifications[0]
    other = plan(order_confirmed(ORDER), customer(), event_id="e-2").notifications[0]
    assert first.notification_id == again.notification_id != other.notification_id


def test_retry_backoff_doubles_up_to_the_cap_then_gives_up():
    policy = RetryPolicy(max_attempts=4, base=timedelta(seconds=10), cap=timedelta(seconds=25))
    assert policy.next_attempt_at(1, AT) == AT + timedelta(seconds=10)
    assert policy.next_attempt_at(2, AT) == AT + timedelta(seconds=20)
    assert policy.next_attempt_at(3, AT) == AT + timedelta(seconds=25)
    assert policy.next_attempt_at(4, AT) is None


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
        order_placed(ORDER, {"id": "C-2", "name": "Li", "phone": "+8613900139000"}).wire())
    assert masked_contact(phone_only) == "+*********9000"
    nothing = OrderCustomer.from_order_placed(order_placed(ORDER, {"id": "C-3", "name": "Li"}).wire())
    assert masked_contact(nothing) == "no contact on file"


@pytest.mark.parametrize("recipient", ["C-1001", "user:x", "role:", "customer: "])
def test_parse_recipient_refuses(recipient):
    with pytest.raises(ValueError, match="must be"):
        parse_recipient(recipient)
    assert parse_recipient("role:warehouse") == ("role", "warehouse")


def test_payment_message_states_the_order_is_paid_in_full_with_what_was_received_in_all():
    """order.paid comes again after an amendment raised the total and the difference was paid,
    with ``paid_amount`` the whole amount received: "we received your payment of" that amount
    would tell the customer they paid it a second time."""
    [planned] = plan(order_paid(ORDER), customer()).notifications
    assert planned.subject == f"Payment received for order TM-{ORDER[-6:]}"
    assert f"order TM-{ORDER[-6:]} is paid in full: we have received 395.00 CNY\nin all" \
        in planned.body
    assert "your payment of" not in planned.body
