"""Reading the notification rules file: the shipped example, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notify.config import EXAMPLE_RULES, NotifyConfig, load_rules
from services.notify.domain import RulesError, parse_rules

GOOD = '''
[[rule]]
name = "confirmed"
event = "order.confirmed"
recipients = ["customer"]
subject = "Order {{ channel_order_id }} confirmed"
body = "Dear {{ customer_name }}, {{ total }} {{ currency }}"
'''


def rule_file(**keys: str) -> str:
    lines = ['[[rule]]', 'name = "r1"', 'event = "stock.shortage"', 'recipients = ["role:warehouse"]',
             'subject = "Short {{ order_id }}"', 'body = "Missing {{ missing_lines }}"']
    fields = {line.split(" = ")[0]: line for line in lines[1:]}
    for key, value in keys.items():
        fields[key] = f"{key} = {value}"
    return "\n".join(["[[rule]]", *fields.values()])


def test_the_shipped_example_names_every_required_rule():
    rules = load_rules(EXAMPLE_RULES)
    assert NotifyConfig().notify_rules_file == EXAMPLE_RULES
    assert {(r.event_type, r.recipients) for r in rules.rules} == {
        ("order.confirmed", ("customer",)), ("order.paid", ("customer",)),
        ("order.backordered", ("customer",)), ("order.shipped", ("customer",)),
        ("order.delivered", ("customer",)), ("refund.issued", ("customer",)),
        ("stock.shortage", ("role:warehouse",)), ("order.approval_requested", ("approver",)),
        ("order.approval_escalated", ("escalate_to",)),
        ("discrepancy.detected", ("role:finance", "role:auditor")),
    }
    assert rules.staff_email["warehouse"] == "warehouse@example.com"
    assert rules.for_event("stock.reserved") == []


def test_the_rules_file_comes_from_the_environment(monkeypatch, tmp_path: Path):
    own = tmp_path / "mine.toml"
    own.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("OMS_NOTIFY_RULES_FILE", str(own))
    monkeypatch.setenv("OMS_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("OMS_NOTIFY_MAX_ATTEMPTS", "3")
    config = NotifyConfig()
    assert [r.name for r in load_rules(config.notify_rules_file).rules] == ["confirmed"]
    assert config.delivery_setup().email is True
    assert config.retry_policy().max_attempts == 3


def test_a_missing_file_says_which_and_how_to_fix_it(tmp_path: Path):
    with pytest.raises(RulesError, match=r"nope\.toml: cannot read .* OMS_NOTIFY_RULES_FILE"):
        load_rules(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rule = [", r"f\.toml: not valid TOML"),
        ("colour = 1", r"f\.toml: unknown top-level key\(s\) colour; accepted: version, staff_email, rule"),
        (rule_file(event='"order.exploded"'),
         r"rule #1 \(r1\): key 'event': 'order.exploded' is not an event .* accepted: order.confirmed"),
        (rule_file(channels='["sms"]'),
         r"rule #1 \(r1\): key 'channels': 'sms' is not a channel; accepted: inbox, email, webhook, "
         r"wecom, dingtalk"),
        (rule_file(recipients='["role:janitor"]'),
         r"key 'recipients': 'role:janitor' is not a recipient; accepted: 'customer'"),
        (rule_file(recipients='["approver"]'), r"'approver' only applies to approval events"),
        (rule_file(colour='"red"'), r"rule #1 \(r1\): unknown key\(s\) colour; accepted: name, "),
        (rule_file(subject='""'), r"key 'subject' is required: a Jinja2 template text"),
        (rule_file(body='"{% for x in missing %}"'), r"key 'body': template line 1: Unexpected end"),
        (rule_file(webhook_url='"ftp://x"'), r"key 'webhook_url': 'ftp://x' must be an http\(s\) URL"),
        ('[[rule]]\nevent = "order.paid"', r"rule #1: key 'name' is required"),
        ('[staff_email]\njanitor = "j@x.cn"', r"\[staff_email\] role 'janitor' unknown"),
        (GOOD + GOOD, r"rule name\(s\) used twice: confirmed"),
    ],
)
def test_a_bad_file_names_the_file_the_rule_the_key_and_what_is_accepted(text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(text, "f.toml")


def test_a_staff_template_may_not_name_the_customer():
    with pytest.raises(RulesError) as refused:
        parse_rules(rule_file(body='"Call {{ customer_name }} at {{ shipping_address }}"'), "f.toml")
    text = str(refused.value)
    assert "rule #1 (r1): key 'body': template uses customer_name, shipping_address" in text
    assert "staff notification of stock.shortage may not use" in text
    assert "customer_contact" in text  # what is allowed instead


def test_a_rule_for_customer_and_staff_together_is_held_to_the_staff_rule():
    mixed = GOOD.replace('["customer"]', '["customer", "role:support"]')
    with pytest.raises(RulesError, match="uses customer_name, which a staff notification"):
        parse_rules(mixed, "f.toml")


def test_chat_robots_never_carry_a_customers_message():
    with pytest.raises(RulesError, match="wecom posts into a staff group chat"):
        parse_rules(GOOD.replace('recipients = ["customer"]',
                                 'recipients = ["customer"]\nchannels = ["wecom"]'), "f.toml")


def test_a_template_using_an_unknown_name_is_refused_when_read():
    with pytest.raises(RulesError, match="template uses totl"):
        parse_rules(GOOD.replace("{{ total }}", "{{ totl }}"), "f.toml")


def test_channels_default_to_inbox_and_duplicates_collapse():
    [rule] = parse_rules(GOOD).rules
    assert rule.channels == ("inbox",)
    [rule] = parse_rules(rule_file(channels='["inbox", "email", "inbox"]')).rules
    assert rule.channels == ("inbox", "email")
