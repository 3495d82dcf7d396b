"""Catalog normalisation and intake validation of storefront messages (pure, no servers)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.order.domain.catalog import (
    DEMO_CATALOG,
    Catalog,
    CatalogError,
    CatalogItem,
    CatalogRef,
    parse_catalog,
    parse_catalog_text,
)
from services.order.domain.validation import (
    AcceptedAmendment,
    envelope_reasons,
    is_phone,
    validate_amendment,
    validate_cancellation,
    validate_payment,
    validate_return,
    validate_submission,
)
from shared.contract.sku import match_key
from shared.contract.storefront import CancellationRequested, ReturnRequested
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
    [reserved] = validate_payment({**good, "payment_id": "bank:T-1:INV-2026-000001"})
    assert (reserved.field, reserved.code) == ("payment_id", "reserved_prefix")
    assert "bank statement lines" in reserved.message and "accepted" in reserved.message


# ---- deeper intake rules: each names field, code and what is accepted ---------------------

DELETE = object()


def edit(message, **changes):
    """A deep copy of ``message`` with dotted paths changed (``lines__0__quantity``)."""
    copy = json.loads(json.dumps(message))
    for path, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("__")]
        target = copy
        for part in parents:
            target = target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return copy


def refusals(message, validate=None):
    result = (validate or (lambda m: validate_submission(m, catalog=CATALOG, now=NOW)))(message)
    assert isinstance(result, list), f"expected a rejection, got {result!r}"
    for found in result:
        assert found.message.startswith(f"{found.field}: "), found
    return {(r.field, r.code): r for r in result}


def accepted(message):
    result = validate_submission(message, catalog=CATALOG, now=NOW)
    assert not isinstance(result, list), [r.message for r in result]
    return result


CROSS_BORDER = {"order_type": "cross_border", "customs": {"recipient_id_number": "330102199001011234"},
                "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "199.00", "hs_code": "8421.39",
                           "declared_value": "199.00"}]}


@pytest.mark.parametrize(("changes", "field", "code", "accepted_text"), [
    # contacts and address
    ({"customer__phone": "12345"}, "customer.phone", "invalid_phone", "mainland mobile (11 digits"),
    ({"customer__phone": "138001380001"}, "customer.phone", "invalid_phone", "E.164 (+ and 8-15 digits)"),
    ({"customer__phone": "+0123456789"}, "customer.phone", "invalid_phone", "E.164"),
    ({"shipping_address__phone": "call me"}, "shipping_address.phone", "invalid_phone", "E.164"),
    ({"customer__email": "wf.example.com"}, "customer.email", "invalid_email", "one @"),
    ({"customer__email": "wf@example"}, "customer.email", "invalid_email", "a domain with a dot"),
    ({"customer__email": "w f@example.com"}, "customer.email", "invalid_email", "no spaces"),
    ({"customer__email": "wf@@example.com"}, "customer.email", "invalid_email", "one @"),
    ({"customer__email": "wf@example..com"}, "customer.email", "invalid_email", "wf@example.com"),
    ({"customer__email": "w" * 250 + "@x.cn"}, "customer.email", "too_long", "at most 254"),
    ({"shipping_address__country": "cn"}, "shipping_address.country", "invalid_country", "upper case"),
    ({"shipping_address__country": "ZZ"}, "shipping_address.country", "invalid_country", "ISO 3166"),
    ({"shipping_address__country": "CHN"}, "shipping_address.country", "too_long", "at most 2"),
    ({"shipping_address__province": DELETE}, "shipping_address.province", "required", "浙江省"),
    ({"shipping_address__district": ""}, "shipping_address.district", "required", "西湖区"),
    ({"shipping_address__postal_code": "31000"}, "shipping_address.postal_code", "invalid_postal_code",
     "6-digit"),
    ({"shipping_address__recipient": DELETE}, "shipping_address.recipient", "required", "is required"),
    ({"shipping_address__phone": DELETE}, "shipping_address.phone", "required", "is required"),
    ({"shipping_address__city": "   "}, "shipping_address.city", "required", "at least 1 character"),
    ({"shipping_address__line1": DELETE}, "shipping_address.line1", "required", "is required"),
    ({"shipping_address__country": DELETE}, "shipping_address.country", "required", "is required"),
    # numbers as they arrive in JSON
    ({"lines__0__quantity": "2"}, "lines[0].quantity", "not_an_integer", "JSON integer"),
    ({"lines__0__quantity": 1.5}, "lines[0].quantity", "not_an_integer", "JSON integer"),
    ({"lines__0__quantity": 2.0}, "lines[0].quantity", "not_an_integer", "JSON integer"),
    ({"lines__0__quantity": True}, "lines[0].quantity", "not_an_integer", "JSON integer"),
    ({"lines__0__quantity": None}, "lines[0].quantity", "not_an_integer", "JSON integer"),
    ({"lines__0__quantity": 0}, "lines[0].quantity", "out_of_range", "above 0"),
    ({"lines__0__quantity": -2}, "lines[0].quantity", "out_of_range", "above 0"),
    ({"lines__0__unit_price": 199.0}, "lines[0].unit_price", "not_a_decimal_string", '"199.00"'),
    ({"lines__0__unit_price": 199}, "lines[0].unit_price", "not_a_decimal_string", '"199.00"'),
    ({"lines__0__unit_price": "1e2"}, "lines[0].unit_price", "not_a_decimal_string", "decimal string"),
    ({"lines__0__unit_price": "NaN"}, "lines[0].unit_price", "not_a_decimal_string", "decimal string"),
    ({"lines__0__unit_price": True}, "lines[0].unit_price", "not_a_decimal_string", "decimal string"),
    ({"lines__0__unit_price": "1.001"}, "lines[0].unit_price", "too_many_decimal_places", "at most 2"),
    ({"lines__0__unit_price": "-1.00"}, "lines[0].unit_price", "out_of_range", "at least 0"),
    ({"shipping_fee": 12.0}, "shipping_fee", "not_a_decimal_string", '"12.00"'),
    ({"discounts": [{"kind": "coupon", "code": "A", "amount": 10}]}, "discounts[0].amount",
     "not_a_decimal_string", '"10.00"'),
    ({"payment": {"method": "alipay", "terms": "deposit", "deposit_amount": 50.5}},
     "payment.deposit_amount", "not_a_decimal_string", '"50.50"'),
    ({"currency": "XYZ"}, "currency", "unknown_currency", "CNY"),
    ({"currency": "JPY", "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "199.50"}]},
     "lines[0].unit_price", "too_many_decimal_places", "at most 0 decimal places"),
    ({"discounts": [{"kind": "coupon", "code": "BIG", "amount": "99999.00"}]}, "discounts",
     "exceeds_subtotal", "at most the subtotal"),
    ({"discounts": [{"kind": "coupon", "amount": "1.00"}]}, "discounts[0].code", "required", "coupon"),
    ({"discounts": [{"kind": "points", "amount": "1.00"}]}, "discounts[0].points", "required", "points"),
    ({"discounts": [{"kind": "bribe", "amount": "1.00"}]}, "discounts[0].kind", "not_allowed", '"coupon"'),
    # message-level
    ({"channel": "ebay"}, "channel", "unregistered_channel", "tmall"),
    ({"submitted_at": (NOW + timedelta(hours=2)).isoformat()}, "submitted_at", "in_future",
     "at most 5 minutes ahead"),
    ({"submitted_at": "2026-11-21T07:59:00"}, "submitted_at", "missing_offset", "+08:00"),
    ({"submitted_at": 1_790_000_000}, "submitted_at", "not_a_datetime", "ISO 8601"),
    ({"submitted_at": "yesterday"}, "submitted_at", "not_a_datetime", "ISO 8601"),
    ({"order_type": "rental"}, "order_type", "not_allowed", '"presale"'),
    ({"gift_wrap": True}, "gift_wrap", "unknown_field", "channel_order_id"),
    ({"customer__vip": True}, "customer.vip", "unknown_field", "phone"),
    ({"lines": []}, "lines", "too_few_items", "at least 1"),
    ({"customer": "王芳"}, "customer", "not_an_object", "JSON object"),
    # payment method and terms
    ({"payment": {"method": "alipay", "terms": "cod"}}, "payment.method", "cod_needs_cash_on_delivery",
     '"cash_on_delivery"'),
    ({"payment": {"method": "cash_on_delivery", "terms": "prepaid"}}, "payment.terms",
     "cash_on_delivery_needs_cod", '"cod"'),
    ({"payment": {"method": "credit_terms", "terms": "prepaid"}}, "payment.terms",
     "credit_terms_need_net_30", '"net_30"'),
    ({"order_type": "presale"}, "payment.terms", "presale_needs_deposit", '"deposit"'),
    ({"payment": {"method": "alipay", "terms": "deposit"}}, "payment.deposit_amount", "required",
     '"deposit"'),
    ({"payment": {"method": "alipay", "terms": "deposit", "deposit_amount": "574.00"}},
     "payment.deposit_amount", "out_of_range", "below the order total 574.00"),
    ({"payment": {"method": "alipay", "terms": "deposit", "deposit_amount": "0.00"}},
     "payment.deposit_amount", "out_of_range", "above 0"),
    ({"payment": {"method": "alipay", "terms": "prepaid", "deposit_amount": "10.00"}},
     "payment.deposit_amount", "not_allowed", '"deposit"'),
    ({"payment": {"method": "bitcoin", "terms": "prepaid"}}, "payment.method", "not_allowed", '"alipay"'),
    # order types
    ({"order_type": "cross_border"}, "customs", "required", "recipient_id_number"),
    ({**CROSS_BORDER, "customs": {}}, "customs.recipient_id_number", "required", "is required"),
    ({**CROSS_BORDER, "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "199.00",
                                 "declared_value": "199.00"}]}, "lines[0].hs_code", "required", "6-10 digit"),
    ({**CROSS_BORDER, "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "199.00",
                                 "hs_code": "84213"}]}, "lines[0].declared_value", "required", '"199.00"'),
    ({**CROSS_BORDER, "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "199.00",
                                 "hs_code": "air purifier", "declared_value": "199.00"}]},
     "lines[0].hs_code", "invalid_hs_code", "6-10 digits"),
    ({"order_type": "group_buy"}, "group_buy", "required", "{group_id, size}"),
    ({"order_type": "group_buy", "group_buy": {"group_id": "G-1", "size": 1}}, "group_buy.size",
     "out_of_range", "above 1"),
    ({"order_type": "group_buy", "group_buy": {"group_id": "G-1", "size": "3"}}, "group_buy.size",
     "not_an_integer", "JSON integer"),
    ({"group_buy": {"group_id": "G-1", "size": 3}}, "group_buy", "not_allowed", '"group_buy"'),
    ({"lines": [{"sku": "X-100", "quantity": 1, "unit_price": "0.00"}]}, "lines[0].unit_price",
     "zero_price_not_allowed", "a price above 0"),
    ({"lines": [{"sku": "GIFT-MUG", "quantity": 1, "unit_price": "0.00", "gift_bundle": "B1"}]}, "lines",
     "gift_without_purchase", "at least one paid line"),
])
def test_intake_rule_names_field_code_and_what_is_accepted(changes, field, code, accepted_text):
    found = refusals(edit(order(), **changes))
    assert (field, code) in found, sorted(found)
    assert accepted_text in found[(field, code)].message


def test_a_field_refused_for_its_raw_type_is_not_refused_twice():
    found = refusals(edit(order(), lines__0__quantity=1.5))
    assert [code for field, code in found if field == "lines[0].quantity"] == ["not_an_integer"]


def test_lowercase_country_suggests_the_upper_case_code():
    assert refusals(edit(order(), shipping_address__country="cn"))[
        ("shipping_address.country", "invalid_country")].suggestion == "CN"


@pytest.mark.parametrize("phone", ["13800138000", "+8613800138000", "86 138 0013 8000", "+86 138-0013-8000",
                                   "+4930123456", "+1 415-555-0100"])
def test_accepted_phone_formats(phone):
    assert is_phone(phone)
    accepted(edit(order(), customer__phone=phone, shipping_address__phone=phone))


@pytest.mark.parametrize("email", ["wf@example.com", "wang.fang+tmall@mail.example.com.cn", "王芳@例子.中国"])
def test_accepted_email_formats(email):
    accepted(edit(order(), customer__email=email))


@pytest.mark.parametrize("changes", [
    {"order_type": "sample", "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "0.00"}],
     "shipping_fee": "0.00"},
    {"lines": [{"sku": "X-100", "quantity": 2, "unit_price": "199.00"},
               {"sku": "GIFT-MUG", "quantity": 1, "unit_price": "0.00", "gift_bundle": "B1"}]},
    {"order_type": "presale",
     "payment": {"method": "alipay", "terms": "deposit", "deposit_amount": "100.00"}},
    {"payment": {"method": "cash_on_delivery", "terms": "cod"}},
    {"payment": {"method": "credit_terms", "terms": "net_30"}},
    CROSS_BORDER,
    {"order_type": "group_buy", "group_buy": {"group_id": "G-1", "size": 3}},
    {"shipping_address": {"recipient": "John Smith", "phone": "+1 415-555-0100", "country": "US",
                          "city": "San Francisco", "line1": "1 Market St", "postal_code": "94105"}},
    {"shipping_address__postal_code": DELETE},
    {"customer__phone": DELETE, "customer__email": DELETE},
    {"submitted_at": (NOW + timedelta(minutes=4)).isoformat()},
    {"currency": "JPY", "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "19900"}],
     "shipping_fee": "0"},
    {"discounts": [{"kind": "points", "points": 500, "amount": "5.00"}]},
])
def test_valid_variants_are_accepted(changes):
    accepted(edit(order(), **changes))


def test_contract_example_gift_bundle_total():
    result = accepted(edit(order(), lines=[
        {"sku": "X-100", "quantity": 2, "unit_price": "199.00"},
        {"sku": "mug", "quantity": 1, "unit_price": "0.00", "gift_bundle": "B1"}]))
    assert [(x.sku, x.gift_bundle) for x in result.lines] == [("X-100", None), ("GIFT-MUG", "B1")]
    assert result.total == Decimal("398.00")


def test_many_problems_are_reported_together():
    found = refusals(edit(order(), channel="ebay", customer__phone="1", lines__0__quantity="2",
                          lines__1__unit_price=88.0))
    assert {("channel", "unregistered_channel"), ("customer.phone", "invalid_phone"),
            ("lines[0].quantity", "not_an_integer"),
            ("lines[1].unit_price", "not_a_decimal_string")} <= set(found)


# ---- the other storefront messages ---------------------------------------------------------

AT = (NOW - timedelta(minutes=1)).isoformat()
REF = {"channel": "tmall", "channel_order_id": "TM-1", "request_id": "R-1", "requested_at": AT}


def amend(**fields):
    order_type = fields.pop("_order_type", None)
    return validate_amendment({"type": "order.amendment_requested", **REF, **fields}, catalog=CATALOG,
                              now=NOW, order_type=order_type)


def test_amendment_lines_resolve_to_catalog_skus_with_subtotal():
    result = amend(lines=[{"sku": "xm-x100", "quantity": 2, "unit_price": "199.00"},
                          {"sku": "ｔｅａ－５００", "quantity": 1, "unit_price": "88.00"}])
    assert isinstance(result, AcceptedAmendment)
    assert [(x.sku, x.line_no, x.tax_rate) for x in result.lines] == [
        ("X-100", 1, Decimal("0.13")), ("TEA-500", 2, Decimal("0.09"))]
    assert result.subtotal == Decimal("486.00") and result.message.shipping_address is None


def test_amendment_of_the_address_only():
    address = order()["shipping_address"] | {"line1": "文二路 1 号"}
    result = amend(shipping_address=address)
    assert isinstance(result, AcceptedAmendment) and result.lines is None and result.subtotal is None
    assert result.message.shipping_address.line1 == "文二路 1 号"


def amendment_refusals(**fields):
    return refusals(fields, validate=lambda f: amend(**f))


@pytest.mark.parametrize(("fields", "field", "code", "accepted_text"), [
    ({}, "$", "empty_amendment", "lines and/or a shipping_address"),
    ({"lines": []}, "lines", "too_few_items", "at least one line"),
    ({"lines": [{"sku": "X-1OO", "quantity": 1, "unit_price": "1.00"}]}, "lines[0].sku", "unknown_sku",
     '"X-100"'),
    ({"lines": [{"sku": "OLD-001", "quantity": 1, "unit_price": "1.00"}]}, "lines[0].sku", "inactive_sku",
     "active catalog SKU"),
    ({"lines": [{"sku": "X-100", "quantity": "2", "unit_price": "1.00"}]}, "lines[0].quantity",
     "not_an_integer", "JSON integer"),
    ({"lines": [{"sku": "X-100", "quantity": 1, "unit_price": 1.0}]}, "lines[0].unit_price",
     "not_a_decimal_string", '"1.00"'),
    ({"lines": [{"sku": "X-100", "quantity": 1, "unit_price": "0.00"}], "_order_type": "standard"},
     "lines[0].unit_price", "zero_price_not_allowed", "above 0"),
    ({"shipping_address": {"recipient": "王芳", "phone": "110", "country": "CN", "province": "浙江省",
                           "city": "杭州市", "district": "西湖区", "line1": "x"}},
     "shipping_address.phone", "invalid_phone", "E.164"),
    ({"shipping_address": {"recipient": "王芳", "phone": "13800138000", "country": "CN", "city": "杭州市",
                           "line1": "x"}}, "shipping_address.province", "required", "CN"),
    ({"channel": "ebay", "lines": None, "shipping_address": None}, "channel", "unregistered_channel", "jd"),
    ({"request_id": ""}, "request_id", "required", "must not be empty"),
    ({"requested_at": "2026-11-21T07:00:00"}, "requested_at", "missing_offset", "+08:00"),
    ({"requested_at": (NOW + timedelta(days=1)).isoformat()}, "requested_at", "in_future", "5 minutes"),
])
def test_amendment_rules(fields, field, code, accepted_text):
    found = amendment_refusals(**fields)
    assert (field, code) in found, sorted(found)
    assert accepted_text in found[(field, code)].message


def test_sample_orders_may_amend_to_free_lines_and_unknown_order_type_skips_the_price_rule():
    lines = [{"sku": "X-100", "quantity": 1, "unit_price": "0.00"}]
    assert isinstance(amend(lines=lines, _order_type="sample"), AcceptedAmendment)
    assert isinstance(amend(lines=lines), AcceptedAmendment)


def cancel(**fields):
    message = {"type": "order.cancellation_requested", **REF, "reason": "changed my mind"} | fields
    return validate_cancellation({k: v for k, v in message.items() if v is not DELETE}, now=NOW)


def test_cancellation_is_accepted_as_the_contract_model():
    result = cancel()
    assert isinstance(result, CancellationRequested) and result.reason == "changed my mind"


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"reason": DELETE}, "reason", "required"),
    ({"reason": "  "}, "reason", "required"),
    ({"channel": "ebay"}, "channel", "unregistered_channel"),
    ({"channel_order_id": ""}, "channel_order_id", "required"),
    ({"requested_at": 1}, "requested_at", "not_a_datetime"),
    ({"requested_at": "2026-11-21T07:00:00"}, "requested_at", "missing_offset"),
    ({"extra": 1}, "extra", "unknown_field"),
])
def test_cancellation_rules(fields, field, code):
    assert (field, code) in refusals(fields, validate=lambda f: cancel(**f))


def give_back(lines, **fields):
    message = {"type": "return.requested", **REF, "lines": lines, "reason": "broken"} | fields
    return validate_return(message, catalog=CATALOG, now=NOW)


def test_return_lines_carry_canonical_skus_and_discontinued_goods_may_come_back():
    result = give_back([{"sku": "x 100", "quantity": 1}, {"sku": "old001", "quantity": 2}])
    assert isinstance(result, ReturnRequested)
    assert [(x.sku, x.quantity) for x in result.lines] == [("X-100", 1), ("OLD-001", 2)]


@pytest.mark.parametrize(("lines", "field", "code", "accepted_text"), [
    ([], "lines", "too_few_items", "at least 1"),
    ([{"sku": "X-1OO", "quantity": 1}], "lines[0].sku", "unknown_sku", '"X-100"'),
    ([{"sku": "X-100", "quantity": 1.5}], "lines[0].quantity", "not_an_integer", "JSON integer"),
    ([{"sku": "X-100", "quantity": 0}], "lines[0].quantity", "out_of_range", "above 0"),
    ([{"sku": "X-100", "quantity": 1}, {"sku": "x100", "quantity": 1}], "lines[1].sku", "duplicate_sku",
     "each SKU once"),
    ([{"sku": "X-100", "quantity": 1, "unit_price": "1.00"}], "lines[0].unit_price", "unknown_field",
     "sku, quantity"),
])
def test_return_rules(lines, field, code, accepted_text):
    found = refusals(lines, validate=give_back)
    assert (field, code) in found, sorted(found)
    assert accepted_text in found[(field, code)].message


@pytest.mark.parametrize(("changes", "field", "code"), [
    ({"amount": 199.0}, "amount", "not_a_decimal_string"),
    ({"amount": "0"}, "amount", "out_of_range"),
    ({"captured_at": "2026-11-21T08:00:00"}, "captured_at", "missing_offset"),
    ({"currency": "XYZ"}, "currency", "unknown_currency"),
    ({"kind": "tip"}, "kind", "not_allowed"),
])
def test_payment_rules(changes, field, code):
    good = payment(order(), captured_at=NOW)
    assert (field, code) in refusals(good | changes, validate=validate_payment)


def test_envelope_messages_say_what_is_accepted():
    assert "at most 65536 bytes" in envelope_reasons({}, 10_000_000)[0].message
    assert "order.submitted" in envelope_reasons({"type": "nope"}, 10)[0].message


# ---- the catalog file ----------------------------------------------------------------------

HEADER = "sku,name,category,tax_rate,aliases,low_stock_threshold,active\n"
GOOD_ROWS = "X-100,Purifier X100,appliances,0.13,X100|XM-X100,20,true\nMUG,Mug,gifts,0.13,,5,true\n"


def catalog_problems(text):
    with pytest.raises(CatalogError) as caught:
        parse_catalog_text(text, source="test.csv")
    return caught.value


@pytest.mark.parametrize(("text", "line", "column", "fragment"), [
    (HEADER + GOOD_ROWS + "T-1,Tea,food,abc,,0,true\n", 4, "tax_rate", "decimal fraction in [0, 1)"),
    (HEADER + GOOD_ROWS + "T-1,Tea,food,1.5,,0,true\n", 4, "tax_rate", "e.g. 0.13"),
    (HEADER + GOOD_ROWS + "T-1,Tea,food,NaN,,0,true\n", 4, "tax_rate", "decimal fraction"),
    (HEADER + GOOD_ROWS + "T-1,Tea,food,0.123456,,0,true\n", 4, "tax_rate", "at most 4 places"),
    (HEADER + "T-1,Tea,food,0.09,,-1,true\n", 2, "low_stock_threshold", "whole number >= 0"),
    (HEADER + "T-1,Tea,food,0.09,,²,true\n", 2, "low_stock_threshold", "whole number"),
    (HEADER + "T-1,Tea,food,0.09,,1,yes\n", 2, "active", "accepted: true, false"),
    (HEADER + ",Tea,food,0.09,,1,true\n", 2, "sku", "not a SKU"),
    (HEADER + "--,Tea,food,0.09,,1,true\n", 2, "sku", "not a SKU"),
    (HEADER + "T-1,,food,0.09,,1,true\n", 2, "name", "is empty"),
    (HEADER + "T-1,Tea,food,0.09,-|T1,1,true\n", 2, "aliases", "not a SKU spelling"),
    (HEADER + GOOD_ROWS + "T-1,Tea,food,0.09,,1,true,surplus\n", 4, None, "more fields than the header"),
    (HEADER + GOOD_ROWS + "x 100,Again,appliances,0.13,,1,true\n", 4, "sku",
     "listed again (first on line 2 as X-100)"),
    (HEADER + GOOD_ROWS + "X-200,Purifier X200,appliances,0.13,xm x100,1,true\n", 4, "aliases",
     'collides with "XM-X100" of X-100 (line 2)'),
    (HEADER + GOOD_ROWS + "XM X100,Purifier,appliances,0.13,,1,true\n", 4, "sku",
     'sku "XM X100" of XM X100 collides with "XM-X100" of X-100 (line 2)'),
    (HEADER + "A-1,A,c,0.13,SHARED,1,true\nB-1,B,c,0.13,ｓｈａｒｅｄ,1,false\n", 3, "aliases",
     'collides with "SHARED" of A-1 (line 2)'),
    ("sku,name,category\nX-1,X,c\n", 1, None, "header lacks tax_rate"),
    ("sku,name,category,tax_rate,alias\nX-1,X,c,0.1,Y\n", 1, None, "unknown column(s) alias"),
    ("", 1, None, "is empty; accepted: a header row"),
])
def test_catalog_file_problems_name_line_and_column(text, line, column, fragment):
    error = catalog_problems(text)
    assert any(p.line == line and p.column == column and fragment in p.message for p in error.problems), \
        error.problems
    assert f"test.csv:{line}:" in str(error)


def test_every_problem_of_a_file_is_reported_at_once():
    error = catalog_problems(HEADER + "A,,c,x,,y,maybe\nB,B,c,0.1,,1,true\nC,C,c,2,,1,true\n")
    assert [(p.line, p.column) for p in error.problems] == [
        (2, "name"), (2, "tax_rate"), (2, "low_stock_threshold"), (2, "active"), (4, "tax_rate")]


def test_header_only_file_and_missing_file_are_refused(tmp_path):
    assert "no SKU rows" in str(catalog_problems(HEADER))
    with pytest.raises(CatalogError, match="cannot read"):
        parse_catalog(tmp_path / "missing.csv")


def test_file_parsing_normalises_skus_aliases_and_defaults():
    catalog = parse_catalog_text(HEADER.replace(",low_stock_threshold,active", "")
                                 + " ｘ－３００ ,Purifier,appliances,0.13, X300 | X300 |XM300\n")
    (item,) = catalog.items.values()
    assert item == CatalogItem("X-300", "Purifier", "appliances", Decimal("0.13"), ("X300", "XM300"), 0, True)


def test_catalog_rows_round_trip_and_active_items_win_a_shared_spelling():
    catalog = parse_catalog(DEMO_CATALOG)
    again = Catalog.from_rows(catalog.to_rows())
    assert again.items == catalog.items
    rows = [{"sku": "OLD-KETTLE", "name": "Old", "category": "k", "tax_rate": "0.1300",
             "aliases": ["KETTLE"], "low_stock_threshold": 0, "active": False},
            {"sku": "NEW-KETTLE", "name": "New", "category": "k", "tax_rate": "0.13",
             "aliases": ["KETTLE"], "low_stock_threshold": 0, "active": True}]
    stored = Catalog.from_rows(rows)
    assert stored.resolve("kettle").item.sku == "NEW-KETTLE"
    assert stored.items["OLD-KETTLE"].tax_rate == Decimal("0.13")
    assert str(stored.items["OLD-KETTLE"].tax_rate) == "0.13"
    assert stored.resolve("old kettle").code == "inactive_sku"
    assert stored.lookup("old kettle").sku == "OLD-KETTLE"


def test_conflicts_name_spellings_that_already_mean_another_active_sku():
    candidate = CatalogItem("X-300", "X300", "appliances", Decimal("0.13"), ("xm-x100", "X300", "old001"))
    assert CATALOG.conflicts(candidate) == ['"xm-x100" already means X-100']


def test_catalog_ref_holds_the_live_catalog():
    ref = CatalogRef(CATALOG)
    assert ref.current is CATALOG and len(CatalogRef().current) == 0


def test_an_enormous_amount_is_refused_not_crashed_on():
    """Found by the intake fuzzer: quantize() beyond Decimal's precision raised InvalidOperation."""
    result = validate_submission(
        {**order(), "lines": [{"sku": "X-100", "quantity": 1, "unit_price": "1E+30"}]},
        catalog=CATALOG, now=NOW)
    assert isinstance(result, list)
    assert ("lines[0].unit_price", "too_large") in {(r.field, r.code) for r in result}
