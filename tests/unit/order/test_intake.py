"""Catalog normalisation and intake validation of storefront messages (pure, no servers)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.order.domain.catalog import DEMO_CATALOG, match_key, parse_catalog
from services.order.domain.validation import envelope_reasons, validate_payment, validate_submission
from shared.demo.traffic import payment, submission

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
CATALOG = parse_catalog(DEMO_CATALOG)


def order(**overrides):
    message = submission("tmall", 1, rng=random.Random(1), submitted_at=NOW - timedelta(minutes=1))
    message.update(overrides)
    return message


@pytest.mark.parametrize("spelling", ["X-100", "x100", "X 100", "Ｘ－１００", "xm-x100", " x_100 "])
def test_every_spelling_of_x100_resolves_to_the_catalog_sku(spelling):
    assert CATALOG.resolve(spelling).item.sku == "X-100"


def test_unknown_sku_suggests_the_nearest_known_one():
    resolution = CATALOG.resolve("X-1OO")
    assert resolution.item is None and resolution.code == "unknown_sku"
    assert resolution.suggestions[0] == "X-100"


def test_match_key_folds_full_width_and_separators():
    assert match_key("ｔｅａ－５００") == "TEA500"


def test_valid_submission_is_accepted_with_canonical_skus_and_totals():
    message = order(lines=[{"sku": "x100", "quantity": 2, "unit_price": "199.00"}],
                    discounts=[{"kind": "coupon", "code": "NEW10", "amount": "10.00"}],
                    shipping_fee="12.00")
    accepted = validate_submission(message, catalog=CATALOG, now=NOW)
    assert not isinstance(accepted, list)
    assert accepted.lines[0].sku == "X-100" and accepted.lines[0].tax_rate == Decimal("0.13")
    assert accepted.total == Decimal("400.00")


def reasons_of(message):
    result = validate_submission(message, catalog=CATALOG, now=NOW)
    assert isinstance(result, list), "expected a rejection"
    return {(r.field, r.code): r for r in result}


def test_unknown_sku_is_refused_with_field_and_suggestion():
    reasons = reasons_of(order(lines=[{"sku": "X-1OO", "quantity": 1, "unit_price": "1.00"}]))
    found = reasons[("lines[0].sku", "unknown_sku")]
    assert found.suggestion == "X-100" and 'did you mean "X-100"' in found.message


@pytest.mark.parametrize(("overrides", "field", "code"), [
    ({"lines": [{"sku": "X-100", "quantity": 0, "unit_price": "1.00"}]}, "lines[0].quantity", "out_of_range"),
    ({"lines": [{"sku": "X-100", "quantity": 1, "unit_price": "1.001"}]}, "lines[0].unit_price",
     "too_many_decimal_places"),
    ({"lines": [{"sku": "X-100", "quantity": 1, "unit_price": "-1.00"}]}, "lines[0].unit_price",
     "out_of_range"),
    ({"currency": "XYZ"}, "currency", "unknown_currency"),
    ({"channel": "ebay"}, "channel", "unregistered_channel"),
    ({"submitted_at": (NOW + timedelta(hours=2)).isoformat()}, "submitted_at", "in_future"),
    ({"discounts": [{"kind": "coupon", "amount": "99999.00"}]}, "discounts", "exceeds_subtotal"),
    ({"order_type": "presale"}, "payment.terms", "presale_needs_deposit"),
    ({"order_type": "cross_border"}, "customs", "required"),
    ({"order_type": "group_buy"}, "group_buy", "required"),
    ({"lines": [{"sku": "OLD-001", "quantity": 1, "unit_price": "1.00"}]}, "lines[0].sku", "inactive_sku"),
])
def test_each_rule_names_field_and_code(overrides, field, code):
    assert (field, code) in reasons_of(order(**overrides))


def test_missing_field_is_required():
    message = order()
    del message["customer"]
    assert ("customer", "required") in reasons_of(message)


def test_deposit_terms_need_an_amount_below_the_total():
    reasons = reasons_of(order(payment={"method": "alipay", "terms": "deposit"}))
    assert ("payment.deposit_amount", "required") in reasons
    reasons = reasons_of(order(payment={"method": "alipay", "terms": "deposit",
                                        "deposit_amount": "999999.00"}))
    assert ("payment.deposit_amount", "out_of_range") in reasons


def test_envelope_checks_size_shape_and_type():
    assert envelope_reasons({"type": "order.submitted"}, 10) == []
    assert envelope_reasons([], 2)[0].code == "not_an_object"
    assert envelope_reasons({"type": "nope"}, 10)[0].code == "unknown_type"
    assert envelope_reasons({}, 10_000_000)[0].code == "too_large"


def test_payment_validation():
    good = payment(order(), captured_at=NOW)
    assert not isinstance(validate_payment(good), list)
    bad = validate_payment({**good, "amount": "0", "method": "bitcoin"})
    assert {r.field for r in bad} == {"amount", "method"}
