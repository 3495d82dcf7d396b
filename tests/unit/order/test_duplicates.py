"""Likely cross-channel duplicates: fingerprints of phone + goods and the time window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.order.domain.catalog import DEMO_CATALOG, parse_catalog
from services.order.domain.duplicates import (
    DEFAULT_WINDOW,
    DuplicateSuspicion,
    fingerprint,
    flag_for,
    likely_duplicates,
    likely_mark,
)
from services.order.domain.validation import normalise_phone, validate_amendment
from shared.contract.payloads import OrderLine

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
CATALOG = parse_catalog(DEMO_CATALOG)
PHONE = "+8613800138000"


def lines(*pairs, price="10.00"):
    return [OrderLine(line_no=n, sku=sku, quantity=quantity, unit_price=Decimal(price))
            for n, (sku, quantity) in enumerate(pairs, start=1)]


def resolved(*pairs):
    """Lines as intake resolves them: storefront spellings -> catalog SKUs."""
    result = validate_amendment({
        "type": "order.amendment_requested", "channel": "jd", "channel_order_id": "JD-1",
        "request_id": "R-1", "requested_at": NOW.isoformat(),
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"} for sku, quantity in pairs]},
        catalog=CATALOG)
    return result.lines


@pytest.mark.parametrize("phone", ["+8613800138000", "8613800138000", "13800138000", "138-0013-8000",
                                   "+86 138 0013 8000"])
def test_mainland_phone_normalises_to_eleven_digits(phone):
    assert normalise_phone(phone) == "13800138000"
    assert fingerprint(phone, lines(("X-100", 1))) == fingerprint(PHONE, lines(("X-100", 1)))


def test_foreign_numbers_keep_their_country_code():
    assert normalise_phone("+1 415-555-0100") == "14155550100"


def test_same_goods_in_any_spelling_and_order_share_a_fingerprint():
    tmall = resolved(("X-100", 2), ("TEA-500", 1))
    jd = resolved(("tea500", 1), ("Ｘ－１００", 2))
    pdd = resolved(("XM-X100", 1), ("lj-tea-500", 1), ("x 100", 1))  # split lines, alias spellings
    assert fingerprint(PHONE, tmall) == fingerprint("138 0013 8000", jd) == fingerprint(PHONE, pdd)
    assert fingerprint(PHONE, lines(("x100", 2))) == fingerprint(PHONE, lines(("X-100", 2)))


def test_prices_do_not_matter_but_quantities_skus_and_phones_do():
    base = fingerprint(PHONE, lines(("X-100", 2)))
    assert fingerprint(PHONE, lines(("X-100", 2), price="0.00")) == base
    assert fingerprint(PHONE, lines(("X-100", 3))) != base
    assert fingerprint(PHONE, lines(("X-200", 2))) != base
    assert fingerprint(PHONE, lines(("X-100", 2), ("GIFT-MUG", 1))) != base
    assert fingerprint("+8613900139000", lines(("X-100", 2))) != base


@pytest.mark.parametrize("phone", [None, "", "   ", "--"])
def test_no_usable_phone_means_no_fingerprint(phone):
    assert fingerprint(phone, lines(("X-100", 1))) is None


def suspect(order_id, minutes, channel="tmall", channel_order_id=None):
    return DuplicateSuspicion(order_id, channel, channel_order_id or f"TM-{order_id}",
                              NOW + timedelta(minutes=minutes))


def test_window_reaches_either_side_and_excludes_the_order_itself():
    candidates = [suspect("O-late", 30), suspect("O-early", -30), suspect("O-self", 0),
                  suspect("O-too-old", -31), suspect("O-too-late", 31), suspect("O-near", -1)]
    found = likely_duplicates(candidates, submitted_at=NOW, window=DEFAULT_WINDOW,
                              exclude_order_id="O-self")
    assert [s.order_id for s in found] == ["O-early", "O-near", "O-late"]


def test_the_same_channel_order_is_never_its_own_duplicate():
    candidates = [suspect("O-1", 1, "jd", "JD-9"), suspect("O-2", 2, "tmall", "JD-9")]
    found = likely_duplicates(candidates, submitted_at=NOW, window=timedelta(minutes=5),
                              exclude_order_id="O-new", channel="jd", channel_order_id="JD-9")
    assert [s.order_id for s in found] == ["O-2"]


def test_flag_names_the_earlier_order():
    assert flag_for("O-1") == "possible_duplicate_of:O-1" == suspect("O-1", 0).flag


def submitted(*pairs, phone=PHONE, **fields):
    return {"type": "order.submitted", "channel": "jd", "channel_order_id": "JD-1",
            "submitted_at": NOW.isoformat(), "customer": {"phone": phone},
            "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}
                      for sku, quantity in pairs], **fields}


def test_a_submissions_likely_mark_is_its_fingerprint_as_sent():
    assert likely_mark(submitted(("X-100", 2), ("tea500", 1))) == (
        fingerprint(PHONE, resolved(("X-100", 2), ("TEA-500", 1))), NOW)
    # only a guess: an alias is mapped by validation, so the guess differs (looked up alone then)
    assert likely_mark(submitted(("XM-X100", 2)))[0] != fingerprint(PHONE, resolved(("XM-X100", 2)))


@pytest.mark.parametrize("message", [
    None, [], "order", {"type": "payment.captured"}, submitted(("X-100", 1), phone=""),
    submitted(("X-100", "1")), submitted(("X-100", True)), submitted((7, 1)),
    submitted(("X-100", 1), submitted_at="yesterday"),
    submitted(("X-100", 1), submitted_at="2026-11-21T08:00:00"),  # no offset: refused later
    submitted(("X-100", 1), customer="C-1"), submitted(("X-100", 1), lines=["X-100"]),
])
def test_no_likely_mark_for_what_is_not_a_submission_that_could_have_one(message):
    assert likely_mark(message) is None
