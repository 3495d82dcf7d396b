"""Approval rules: the file format and its refusals, every condition, priority, escalation timing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.order.domain.approval import (
    ApprovalFacts,
    ApprovalLevel,
    ApprovalPlan,
    ApprovalRule,
    PendingApproval,
    RulesError,
    RuleSet,
    describe_route,
    due_escalations,
    escalation_deadline,
    evaluate,
    format_sla,
    overdue,
    parse_sla,
)
from services.order.domain.rules_file import load_rules, parse_rules
from shared.auth import ROLES
from shared.contract.payloads import OrderPlaced

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "approval-rules.example.toml"
LEVEL = '[[rule.level]]\nrole = "sales_director"\nsla = "4h"\nescalate_to = "general_manager"\n'


def facts(**changes: object) -> ApprovalFacts:
    base = ApprovalFacts(kind="order", total=Decimal("1000.00"), currency="CNY",
                         subtotal=Decimal("1000.00"), discount_total=Decimal("0.00"),
                         customer_tier="regular", order_type="standard", channel="tmall",
                         payment_terms="prepaid")
    return replace(base, **changes)  # type: ignore[arg-type]


def one_rule(when: str = "", *, head: str = "", level: str = LEVEL) -> str:
    """A rules file with one rule "r" (``when`` lines go under [rule.when])."""
    when_table = f"[rule.when]\n{when}\n" if when else ""
    return f'version = "v1"\n[[rule]]\nid = "r"\n{head}\n{when_table}{level}'


def refusals(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.toml")
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


def refusal(text: str) -> str:
    (problem,) = refusals(text)
    return problem


# ---- the shipped example -----------------------------------------------------------------


def test_the_shipped_example_parses_in_priority_order():
    rules = load_rules(EXAMPLE)
    assert rules.version == "2026-11-01" and rules.source == str(EXAMPLE)
    assert [rule.id for rule in rules.rules] == [
        "large-orders", "deep-discount", "credit-terms-regular", "large-amendments"]
    large = rules.rules[0]
    assert large.levels == (
        ApprovalLevel("sales_director", timedelta(hours=4), "general_manager"),
        ApprovalLevel("finance_director", timedelta(hours=4), "general_manager"),
    )
    assert describe_route(large.levels) == "sales_director(4h) -> finance_director(4h)"
    assert all(rule.description for rule in rules.rules)


@pytest.mark.parametrize(("sample", "rule_id", "route"), [
    (facts(total=Decimal("120000.00"), subtotal=Decimal("120000.00")), "large-orders",
     "sales_director(4h) -> finance_director(4h)"),
    (facts(total=Decimal("100000.00"), subtotal=Decimal("100000.00")), "large-orders",
     "sales_director(4h) -> finance_director(4h)"),
    # a large order with a deep discount: the first rule wins and already has the sales director
    (facts(total=Decimal("150000.00"), subtotal=Decimal("250000.00"), discount_total=Decimal("100000.00")),
     "large-orders", "sales_director(4h) -> finance_director(4h)"),
    (facts(total=Decimal("650.00"), subtotal=Decimal("1000.00"), discount_total=Decimal("350.00")),
     "deep-discount", "sales_director(4h)"),
    (facts(payment_terms="net_30"), "credit-terms-regular", "finance(8h)"),
    (facts(kind="amendment", total=Decimal("60000.00")), "large-amendments", "sales_director(2h)"),
    # amendments are judged only by the rules that apply to amendments
    (facts(kind="amendment", total=Decimal("120000.00")), "large-amendments", "sales_director(2h)"),
    (facts(), None, None),
    (facts(payment_terms="net_30", customer_tier="vip"), None, None),
    (facts(total=Decimal("60000.00")), None, None),
    (facts(kind="amendment", total=Decimal("50000.00")), None, None),
])
def test_the_example_file_on_sample_orders(sample, rule_id, route):
    plan = evaluate(load_rules(EXAMPLE), sample)
    if rule_id is None:
        assert plan is None
    else:
        assert plan is not None and plan.rule_id == rule_id and plan.rules_version == "2026-11-01"
        assert describe_route(plan.levels) == route


def test_a_plan_says_in_words_why_the_rule_applied():
    plan = evaluate(load_rules(EXAMPLE), facts(total=Decimal("120000.00"), subtotal=Decimal("120000.00")))
    assert plan == ApprovalPlan("large-orders", "2026-11-01", plan.levels,
                                ("total 120000.00 CNY is at least 100000.00",))
    plan = evaluate(load_rules(EXAMPLE), facts(subtotal=Decimal("1000.00"), discount_total=Decimal("350.00"),
                                               total=Decimal("650.00")))
    assert plan is not None
    assert plan.reasons == ("discount ratio 0.35 (350.00 of 1000.00) is above 0.3",)
    plan = evaluate(load_rules(EXAMPLE), facts(payment_terms="net_30"))
    assert plan is not None
    assert plan.reasons == ('customer tier "regular" is one of: regular',
                            'payment terms "net_30" is one of: net_30')


# ---- conditions --------------------------------------------------------------------------


@pytest.mark.parametrize(("when", "matching", "other"), [
    ('total_at_least = "100000.00"', facts(total=Decimal("100000.00")), facts(total=Decimal("99999.99"))),
    ('total_above = "50000"', facts(total=Decimal("50000.01")), facts(total=Decimal("50000.00"))),
    ('total_below = "10"', facts(total=Decimal("9.99")), facts(total=Decimal("10.00"))),
    ('currency = "USD"', facts(currency="USD"), facts(currency="CNY")),
    ('customer_tier_in = ["regular", "new"]', facts(customer_tier="new"), facts(customer_tier="vip")),
    ('order_type_in = ["presale", "sample"]', facts(order_type="sample"), facts(order_type="standard")),
    ('channel_in = ["pos"]', facts(channel="pos"), facts(channel="tmall")),
    ('payment_terms_in = ["net_30", "cod"]', facts(payment_terms="cod"), facts(payment_terms="prepaid")),
    ('discount_ratio_above = "0.3"', facts(discount_total=Decimal("300.01")),
     facts(discount_total=Decimal("300.00"))),
])
def test_each_condition_decides_on_its_own(when, matching, other):
    rules = parse_rules(one_rule(when))
    plan = evaluate(rules, matching)
    assert plan is not None and plan.rule_id == "r" and len(plan.reasons) == 1
    assert evaluate(rules, other) is None


def test_every_given_condition_must_hold():
    rules = parse_rules(one_rule('total_at_least = "5000"\nchannel_in = ["jd"]\ncurrency = "CNY"'))
    plan = evaluate(rules, facts(total=Decimal("6000.00"), channel="jd"))
    assert plan is not None and plan.reasons == (
        "currency is CNY", "total 6000.00 CNY is at least 5000", 'channel "jd" is one of: jd')
    assert evaluate(rules, facts(total=Decimal("6000.00"), channel="pdd")) is None
    assert evaluate(rules, facts(total=Decimal("4000.00"), channel="jd")) is None
    assert evaluate(rules, facts(total=Decimal("6000.00"), channel="jd", currency="HKD")) is None


def test_amounts_compare_in_the_orders_own_currency_unless_a_currency_is_named():
    rules = parse_rules(one_rule('total_at_least = "100000"'))
    assert evaluate(rules, facts(total=Decimal("100000"), currency="JPY")) is not None


def test_discount_ratio_is_discount_over_subtotal_and_zero_without_a_subtotal():
    quarter = facts(subtotal=Decimal("200.00"), discount_total=Decimal("50.00"))
    assert quarter.discount_ratio == Decimal("0.25")
    free = facts(subtotal=Decimal("0.00"), discount_total=Decimal("0.00"), total=Decimal("12.00"))
    assert free.discount_ratio == 0
    assert evaluate(parse_rules(one_rule('discount_ratio_above = "0"')), free) is None


def test_first_matching_rule_wins():
    text = (
        'version = "v2"\n'
        f'[[rule]]\nid = "first"\n[rule.when]\ntotal_above = "100"\n{LEVEL}'
        '[[rule]]\nid = "second"\n[rule.when]\ntotal_above = "10"\n'
        '[[rule.level]]\nrole = "finance"\nsla = "1h"\nescalate_to = "finance_director"\n'
    )
    rules = parse_rules(text)
    assert evaluate(rules, facts(total=Decimal("500"))).rule_id == "first"  # type: ignore[union-attr]
    assert evaluate(rules, facts(total=Decimal("50"))).rule_id == "second"  # type: ignore[union-attr]
    assert evaluate(rules, facts(total=Decimal("5"))) is None


def test_applies_to_orders_by_default_and_to_amendments_when_asked():
    orders_only = parse_rules(one_rule())
    assert orders_only.rules[0].applies_to == ("order",)
    assert evaluate(orders_only, facts(kind="amendment")) is None
    amendments = parse_rules(one_rule(head='applies_to = ["amendment"]'))
    assert evaluate(amendments, facts()) is None
    assert evaluate(amendments, facts(kind="amendment")) is not None
    both = parse_rules(one_rule(head='applies_to = ["order", "amendment"]'))
    assert evaluate(both, facts()) is not None and evaluate(both, facts(kind="amendment")) is not None


def test_a_rule_without_conditions_applies_to_everything_it_names():
    plan = evaluate(parse_rules(one_rule()), facts())
    assert plan is not None and plan.reasons == ("the rule has no conditions: it applies to every order",)


def test_no_rules_means_automatic_approval():
    empty = RuleSet.empty()
    assert empty.version == "none" and empty.rules == ()
    assert evaluate(empty, facts(total=Decimal("99999999.00"))) is None
    only_version = parse_rules('version = "2026-12-01"\n')
    assert only_version.rules == () and evaluate(only_version, facts()) is None


def test_facts_of_a_placed_order():
    placed = OrderPlaced(
        order_id="O-1", channel="jd", channel_order_id="JD-1", order_type="presale",
        submitted_at=datetime(2026, 11, 21, tzinfo=UTC), customer={"id": "C-1", "name": "x", "tier": "gold"},
        shipping_address={}, lines=[], shipping_fee=Decimal("12.00"), currency="CNY",
        subtotal=Decimal("1000.00"), discount_total=Decimal("100.00"), total=Decimal("912.00"),
        payment={"method": "alipay", "terms": "deposit"}, content_hash="h")
    assert ApprovalFacts.of_order(placed) == ApprovalFacts(
        kind="order", total=Decimal("912.00"), currency="CNY", subtotal=Decimal("1000.00"),
        discount_total=Decimal("100.00"), customer_tier="gold", order_type="presale", channel="jd",
        payment_terms="deposit")
    no_tier = placed.model_copy(update={"customer": {"id": "C-1", "name": "x"}})
    assert ApprovalFacts.of_order(no_tier, "amendment").customer_tier == "regular"
    assert ApprovalFacts.of_order(no_tier, "amendment").kind == "amendment"


def test_rules_describe_their_conditions_for_listings():
    rule = ApprovalRule(id="x", applies_to=("order", "amendment"), total_at_least=Decimal("10"),
                        channel_in=("jd", "pos"), discount_ratio_above=Decimal("0.2"), currency="CNY",
                        levels=(ApprovalLevel("finance", timedelta(hours=1), "finance_director"),))
    assert rule.describe_conditions() == ("orders", "amendments", "currency CNY", "total at least 10",
                                          "channel in jd, pos", "discount ratio above 0.2")


# ---- the file's refusals -----------------------------------------------------------------


def test_an_unknown_role_names_file_rule_level_and_the_accepted_roles():
    cfo = '[[rule.level]]\nrole = "cfo"\nsla = "4h"\nescalate_to = "general_manager"\n'
    text = one_rule(level=LEVEL + cfo)
    assert refusal(text.replace('id = "r"', 'id = "big-orders"')) == (
        f'rules.toml: rule "big-orders" level 2: role "cfo" unknown; accepted: {", ".join(ROLES)}')


@pytest.mark.parametrize(("text", "expected"), [
    ("version = ", "rules.toml: not valid TOML: "),
    ("[[rule]]\nid = 'r'\n" + LEVEL, 'rules.toml: version: missing; put version = "2026-11-01" at the top'),
    ("version = 3\n", "rules.toml: version: must be a string, not an integer;"),
    ('version = "  "\n', 'rules.toml: version: empty; put version = "2026-11-01" at the top'),
    ('version = "v"\nverison = "x"\n',
     'rules.toml: unknown key "verison" in the top level (did you mean "version"?); accepted: version, rule'),
    ('version = "v"\n[rule]\nid = "r"\n', "rules.toml: rule: write each rule as [[rule]]"),
    ('version = "v"\n[[rule]]\n' + LEVEL, 'rules.toml: rule 1: id missing: give every rule a unique id'),
    (one_rule(head='totl = "x"'), 'rules.toml: rule "r": unknown key "totl" in [[rule]]; accepted: id, '),
    (one_rule(head='descripton = "x"'), '(did you mean "description"?)'),
    (one_rule(head="description = 5"), 'rules.toml: rule "r": description: must be a string, not an integer'),
    (one_rule(head='applies_to = "order"'), "rule \"r\": applies_to: 'order' not accepted; write"),
    (one_rule(head='applies_to = ["return"]'), 'applies_to: [\'return\'] not accepted; write ["order"], '
                                               '["amendment"] or ["order", "amendment"]'),
    (one_rule(head="applies_to = []"), "applies_to: [] not accepted"),
    (one_rule(head="when = 5"), 'rule "r": when: must be a table: write [rule.when]'),
    (one_rule('total_abov = "1"'),
     'unknown key "total_abov" in [rule.when] (did you mean "total_above"?); accepted: total_at_least, '
     "total_above, total_below, discount_ratio_above, currency, customer_tier_in, order_type_in, "
     "channel_in, payment_terms_in"),
    (one_rule("total_above = 100000.0"),
     'rule "r": total_above: 100000.0 is a TOML float; write it as a decimal string: "100000.0"'),
    (one_rule('total_above = "12,000"'),
     'rule "r": total_above: "12,000" is not a decimal number of 0 or more; write e.g. "100000.00"'),
    (one_rule('total_below = "-1"'), 'total_below: "-1" is not a decimal number of 0 or more'),
    (one_rule("total_at_least = true"), "total_at_least: a boolean is not a decimal number"),
    (one_rule('total_at_least = "NaN"'), 'total_at_least: "NaN" is not a decimal number'),
    (one_rule('discount_ratio_above = "30"'),
     'rule "r": discount_ratio_above: 30 is not a fraction below 1; write e.g. "0.3"'),
    (one_rule('currency = "RMB"'), 'rule "r": currency "RMB" unknown; accepted: CNY, HKD'),
    (one_rule('channel_in = "jd"'), 'rule "r": channel_in: must be a non-empty list of strings'),
    (one_rule("customer_tier_in = []"), "customer_tier_in: must be a non-empty list of strings"),
    (one_rule('order_type_in = ["normal"]'),
     'rule "r": order_type_in: "normal" unknown; accepted: standard, presale, group_buy, sample, '
     "cross_border"),
    (one_rule('payment_terms_in = ["net30"]'),
     'payment_terms_in: "net30" unknown; accepted: prepaid, deposit, net_30, cod'),
    (one_rule('total_above = "100"\ntotal_below = "100"'),
     'rule "r": total_below 100 is not above 100: the rule could never apply'),
    (one_rule(level=""), 'rules.toml: rule "r": needs at least one [[rule.level]] (role, sla, escalate_to)'),
    (one_rule(level='[rule.level]\nrole = "sales"\nsla = "1h"\nescalate_to = "finance"\n'),
     "needs at least one [[rule.level]]"),
    (one_rule(level=LEVEL + 'approver = "x"\n'),
     'rule "r" level 1: unknown key "approver" in [[rule.level]]; accepted: role, sla, escalate_to'),
    (one_rule(level='[[rule.level]]\nsla = "4h"\nescalate_to = "finance"\n'),
     'rules.toml: rule "r" level 1: role missing; accepted: sales, sales_director'),
    (one_rule(level='[[rule.level]]\nrole = 1\nsla = "4h"\nescalate_to = "finance"\n'),
     'rule "r" level 1: role must be a role name, not an integer; accepted:'),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nsla = "4h"\nescalate_to = "boss"\n'),
     'rule "r" level 1: escalate_to "boss" unknown; accepted:'),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nsla = "4h"\nescalate_to = "finance"\n'),
     'rule "r" level 1: escalate_to "finance" is the level\'s own role; name the role above it'),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nsla = "4 hours"\nescalate_to = "finance_director"\n'),
     'rule "r" level 1: sla "4 hours" not understood; write a duration such as "30m", "4h", "2d" or "1d12h"'),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nsla = "0h"\nescalate_to = "finance_director"\n'),
     'sla "0h" not understood'),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nsla = 4\nescalate_to = "finance_director"\n'),
     "rule \"r\" level 1: sla must be a string, not an integer; write a duration"),
    (one_rule(level='[[rule.level]]\nrole = "finance"\nescalate_to = "finance_director"\n'),
     'rule "r" level 1: sla missing; write a duration'),
    (one_rule(level=LEVEL + LEVEL), 'rule "r": role "sales_director" appears in two levels; each role '
                                    "approves once"),
    (one_rule(level="level = 3\n"), "needs at least one [[rule.level]]"),
    ('version = "v"\nrule = [1]\n', "rules.toml: rule 1: must be a table: write each rule as [[rule]]"),
    (one_rule(level="level = [1]\n"), 'rule "r" level 1: must be a table: write [[rule.level]]'),
])
def test_each_kind_of_refusal_says_where_what_and_what_is_accepted(text, expected):
    problems = refusals(text)
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith("rules.toml: ") for problem in problems)


def test_a_duplicate_rule_id_names_both_rules():
    text = one_rule() + '[[rule]]\nid = "r"\n' + LEVEL
    assert refusal(text) == 'rules.toml: rule "r": id used twice (rules 1 and 2); ids must be unique'


def test_every_problem_is_reported_at_once():
    text = ('version = 1\n[[rule]]\nid = "a"\n[rule.when]\ncurrency = "XXX"\n'
            '[[rule.level]]\nrole = "cfo"\nsla = "soon"\nescalate_to = "ceo"\n')
    assert [p.split(": ", 2)[1] for p in refusals(text)] == [
        "version", 'rule "a"', 'rule "a" level 1', 'rule "a" level 1', 'rule "a" level 1']


def test_an_unquoted_date_version_is_taken_as_written():
    assert parse_rules("version = 2026-11-01\n").version == "2026-11-01"


def test_load_rules_names_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(RulesError, match=r"nope\.toml: cannot read the rules file: No such file"):
        load_rules(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe version")
    with pytest.raises(RulesError, match=r"binary\.toml: not UTF-8 text"):
        load_rules(binary)
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "v"\n[[rule]]\n')
    with pytest.raises(RulesError, match=r"^.*bad\.toml: rule 1: id missing"):
        load_rules(bad)


@pytest.mark.parametrize(("text", "delta", "shown"), [
    ("30m", timedelta(minutes=30), "30m"), ("4h", timedelta(hours=4), "4h"),
    ("2d", timedelta(days=2), "2d"), ("1d12h", timedelta(days=1, hours=12), "1d12h"),
    ("1h 30m", timedelta(hours=1, minutes=30), "1h30m"), ("90m", timedelta(minutes=90), "1h30m"),
    ("4H", timedelta(hours=4), "4h"),
])
def test_sla_durations(text, delta, shown):
    assert parse_sla(text) == delta and format_sla(delta) == shown


@pytest.mark.parametrize("text", ["", "4", "h", "4 hours", "-4h", "1.5h", "4h2d", "0m"])
def test_sla_durations_not_understood(text):
    assert parse_sla(text) is None


# ---- escalation --------------------------------------------------------------------------

REQUESTED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def waiting(**changes: object) -> PendingApproval:
    pending = PendingApproval(order_id="O-1", level_index=0, role="sales_director",
                              requested_at=REQUESTED, sla=timedelta(hours=4),
                              escalate_to="general_manager", escalations=0)
    return replace(pending, **changes)  # type: ignore[arg-type]


def test_an_approval_is_overdue_once_its_sla_has_passed():
    pending = waiting()
    assert escalation_deadline(pending) == REQUESTED + timedelta(hours=4)
    assert not overdue(pending, REQUESTED)
    assert not overdue(pending, REQUESTED + timedelta(hours=4))
    assert overdue(pending, REQUESTED + timedelta(hours=4, microseconds=1))


def test_after_an_escalation_the_next_is_due_one_sla_later():
    first = REQUESTED + timedelta(hours=4, minutes=1)
    once = waiting().escalated(first)
    assert once.escalations == 1 and once.last_escalated_at == first
    assert escalation_deadline(once) == first + timedelta(hours=4)
    assert not overdue(once, first + timedelta(hours=4))
    assert overdue(once, first + timedelta(hours=4, seconds=1))


def test_without_the_last_escalation_time_escalations_count_as_on_time():
    twice = waiting(escalations=2)
    assert escalation_deadline(twice) == REQUESTED + timedelta(hours=12)
    assert not overdue(twice, REQUESTED + timedelta(hours=11))
    assert overdue(twice, REQUESTED + timedelta(hours=12, minutes=1))


def test_a_scheduler_back_after_a_long_stop_escalates_once_not_once_per_missed_period():
    back = REQUESTED + timedelta(days=2)
    assert due_escalations([waiting()], back) == [waiting()]
    escalated = waiting().escalated(back)
    assert due_escalations([escalated], back + timedelta(minutes=1)) == []
    assert due_escalations([escalated], back + timedelta(hours=4, minutes=1)) == [escalated]


def test_due_escalations_picks_the_overdue_waits_in_the_order_given():
    now = REQUESTED + timedelta(hours=5)
    late = waiting(order_id="O-late")
    fresh = waiting(order_id="O-fresh", requested_at=REQUESTED + timedelta(hours=2))
    quick = waiting(order_id="O-quick", level_index=1, role="finance_director",
                    requested_at=REQUESTED + timedelta(hours=4), sla=timedelta(minutes=30))
    already = waiting(order_id="O-already", escalations=1,
                      last_escalated_at=REQUESTED + timedelta(hours=4, minutes=30))
    assert due_escalations([late, fresh, quick, already], now) == [late, quick]
    assert due_escalations([], now) == []
