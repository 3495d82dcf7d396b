"""Intake validation of storefront messages: field-level reasons, never a silent drop.

Every reason names the field, the rule and what would be accepted; its ``message`` starts with the
field so it reads on its own in a storefront's log (``customer.phone: "12345" is not ...``).
Raw JSON types and pydantic's errors are translated in ``wire.py``; the rules live here.

Gift bundles (decision): a zero-priced line is allowed on a non-sample order only when it carries
``gift_bundle``; the order must still hold at least one paid line (a gift comes with a purchase).
The paid line need not carry the bundle id itself (CONTRACT.md's example bundles only the mug).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from services.order.domain.catalog import Catalog, CatalogItem
from services.order.domain.contact import (
    EMAIL_RULE,
    address_reasons,
    is_email,
    is_phone,
    normalise_phone,
    phone_reasons,
)
from services.order.domain.wire import (
    EXAMPLE_INSTANT,
    as_json,
    field_path,
    parse,
    reason,
    reasons_from,
    refusal,
)
from shared.contract.bank_events import BANK_PAYMENT_PREFIX, RESERVED_PAYMENT_ID
from shared.contract.payloads import OrderLine, RejectionReason
from shared.contract.storefront import (
    MODEL_BY_TYPE,
    AmendmentRequested,
    CancellationRequested,
    Line,
    OrderSubmitted,
    PaymentCaptured,
    ReturnRequested,
)
from shared.money import MINOR_UNITS, known_currency, quantum

__all__ = [  # field_path, reason and reasons_from stay importable from here (handlers use them)
    "CLOCK_SKEW", "MAX_MESSAGE_BYTES", "REGISTERED_CHANNELS", "AcceptedAmendment",
    "AcceptedSubmission", "address_reasons", "envelope_reasons", "field_path", "is_email", "is_phone",
    "normalise_phone", "reason", "reasons_from", "refusal", "validate_amendment",
    "validate_cancellation", "validate_payment", "validate_return", "validate_submission",
]

REGISTERED_CHANNELS: tuple[str, ...] = ("tmall", "jd", "pdd", "web", "pos")
MAX_MESSAGE_BYTES = 64 * 1024
CLOCK_SKEW = timedelta(minutes=5)
_HS_CODE = re.compile(r"\d{6,10}")


# ---- rules shared by every message type --------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptedSubmission:
    message: OrderSubmitted
    lines: list[OrderLine]
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class AcceptedAmendment:
    """An amendment whose replacement lines (if any) resolved to catalog SKUs."""

    message: AmendmentRequested
    lines: list[OrderLine] | None
    subtotal: Decimal | None


def envelope_reasons(raw: Any, size: int) -> list[RejectionReason]:
    """Checks before the message's own shape: size, JSON object, known ``type``."""
    if size > MAX_MESSAGE_BYTES:
        return [refusal("$", "too_large", f"message is {size} bytes; accepted: at most "
                        f"{MAX_MESSAGE_BYTES} bytes")]
    if not isinstance(raw, dict):
        return [refusal("$", "not_an_object", "a storefront message must be a JSON object")]
    if unstorable(raw):
        return [refusal("$", "invalid_character",
                        "text must be UTF-8 without NUL characters; accepted: any other Unicode text")]
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in MODEL_BY_TYPE:
        return [refusal("type", "unknown_type", f"unknown message type {as_json(kind)}; accepted: "
                        + ", ".join(MODEL_BY_TYPE))]
    return []


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \udXXX escape
        return True
    return False


def unstorable(value: Any) -> bool:
    """Text PostgreSQL cannot keep (NUL) or that is not Unicode (lone surrogates), anywhere."""
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        return any(_bad_text(str(k)) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


def _common(channel: str, currency: str | None, field: str = "currency") -> list[RejectionReason]:
    reasons = []
    if channel not in REGISTERED_CHANNELS:
        reasons.append(refusal("channel", "unregistered_channel", f"channel {as_json(channel)} is not "
                               "registered; accepted: " + ", ".join(REGISTERED_CHANNELS)))
    if currency is not None and not known_currency(currency):
        reasons.append(refusal(field, "unknown_currency", f"unknown currency {as_json(currency)}; accepted: "
                               + ", ".join(MINOR_UNITS)))
    return reasons


def _request_ids(values: dict[str, str]) -> list[RejectionReason]:
    return [refusal(name, "required", "must not be empty") for name, value in values.items() if not value]


def _instant(field: str, value: datetime, now: datetime | None) -> list[RejectionReason]:
    if value.tzinfo is None:
        return [refusal(field, "missing_offset", f"{value.isoformat()} has no UTC offset; send e.g. "
                        f"{EXAMPLE_INSTANT}")]
    if now is not None and value > now + CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return [refusal(field, "in_future", f"{value.isoformat()} is in the future (now "
                        f"{now.isoformat()}); accepted: at most {minutes} minutes ahead")]
    return []


def _resolve_lines(lines: Sequence[Line], catalog: Catalog) -> tuple[list[OrderLine], list[RejectionReason]]:
    resolved_lines: list[OrderLine] = []
    reasons = []
    for index, line in enumerate(lines):
        resolved = catalog.resolve(line.sku)
        if resolved.item is None:
            reasons.append(_sku_refusal(f"lines[{index}].sku", line.sku, resolved.code,
                                        resolved.suggestions))
            continue
        resolved_lines.append(OrderLine(
            line_no=index + 1, sku=resolved.item.sku, name=resolved.item.name, quantity=line.quantity,
            unit_price=line.unit_price, tax_rate=resolved.item.tax_rate, gift_bundle=line.gift_bundle))
    return resolved_lines, reasons


def _sku_refusal(field: str, sku: str, code: str | None, suggestions: Sequence[str]) -> RejectionReason:
    if code == "inactive_sku":
        return refusal(field, "inactive_sku", f"SKU {as_json(sku)} is no longer sold; accepted: an active "
                       "catalog SKU")
    hint = suggestions[0] if suggestions else None
    return refusal(field, "unknown_sku", f"unknown SKU {as_json(sku)}"
                   + (f' (did you mean "{hint}"?)' if hint else "; accepted: a catalog SKU"), hint)


def _price_rules(lines: Sequence[Line], order_type: str | None) -> list[RejectionReason]:
    if order_type in (None, "sample"):
        return []
    reasons = [refusal(f"lines[{i}].unit_price", "zero_price_not_allowed",
                       f"{line.unit_price} is only allowed on sample orders or gift_bundle lines; "
                       "accepted: a price above 0")
               for i, line in enumerate(lines) if line.unit_price == 0 and not line.gift_bundle]
    if lines and not reasons and all(line.unit_price == 0 for line in lines):
        reasons.append(refusal("lines", "gift_without_purchase", "every line is a free gift_bundle "
                               "line; accepted: at least one paid line with the gifts"))
    return reasons


MAX_AMOUNT = Decimal(10) ** 15


def _minor_units(currency: str, amounts: Iterator[tuple[str, Decimal | None]]) -> list[RejectionReason]:
    if not known_currency(currency):
        return []
    step = quantum(currency)
    reasons = []
    for field, amount in amounts:
        if amount is None:
            continue
        if abs(amount) >= MAX_AMOUNT:  # also keeps quantize() within Decimal's precision
            reasons.append(refusal(field, "too_large", f"{amount} is too large; accepted: amounts "
                                   f"below {MAX_AMOUNT:,}"))
        elif amount != amount.quantize(step):
            reasons.append(refusal(field, "too_many_decimal_places", f"{amount} has more decimals "
                                   f"than {currency} allows; accepted: at most "
                                   f"{MINOR_UNITS[currency]} decimal places"))
    return reasons


# ---- order.submitted ---------------------------------------------------------------------


def validate_submission(raw: dict[str, Any], *, catalog: Catalog, now: datetime
                        ) -> AcceptedSubmission | list[RejectionReason]:
    message, reasons = parse(OrderSubmitted, raw)
    if message is None:
        return reasons
    reasons += _common(message.channel, message.currency)
    reasons += _instant("submitted_at", message.submitted_at, now)
    reasons += phone_reasons("customer.phone", message.customer.phone)
    if message.customer.email is not None and not is_email(message.customer.email):
        reasons.append(refusal("customer.email", "invalid_email",
                               f'"{message.customer.email}" is not {EMAIL_RULE}, e.g. "wf@example.com"'))
    reasons += address_reasons(message.shipping_address)
    lines, sku_reasons = _resolve_lines(message.lines, catalog)
    reasons += sku_reasons + _price_rules(message.lines, message.order_type)
    reasons += _minor_units(message.currency, _submission_amounts(message))
    for index, discount in enumerate(message.discounts):
        needed = {"coupon": "code", "points": "points"}.get(discount.kind)
        if needed and getattr(discount, needed) is None:
            reasons.append(refusal(f"discounts[{index}].{needed}", "required",
                                   f"is required for a {discount.kind} discount"))
    subtotal = sum((line.unit_price * line.quantity for line in message.lines), Decimal(0))
    discount_total = sum((d.amount for d in message.discounts), Decimal(0))
    if discount_total > subtotal:
        reasons.append(refusal("discounts", "exceeds_subtotal", f"discounts {discount_total} exceed "
                               f"the subtotal {subtotal}; accepted: at most the subtotal"))
    total = subtotal - discount_total + message.shipping_fee
    reasons += _order_type_rules(message, total)
    if reasons:
        return reasons
    return AcceptedSubmission(message, lines, subtotal, discount_total, total)


def _submission_amounts(message: OrderSubmitted) -> Iterator[tuple[str, Decimal | None]]:
    for i, line in enumerate(message.lines):
        yield f"lines[{i}].unit_price", line.unit_price
        yield f"lines[{i}].declared_value", line.declared_value
    for i, discount in enumerate(message.discounts):
        yield f"discounts[{i}].amount", discount.amount
    yield "shipping_fee", message.shipping_fee
    yield "payment.deposit_amount", message.payment.deposit_amount


def _order_type_rules(message: OrderSubmitted, total: Decimal) -> list[RejectionReason]:
    reasons = []
    payment, kind = message.payment, message.order_type
    if kind == "presale" and payment.terms != "deposit":
        reasons.append(refusal("payment.terms", "presale_needs_deposit", f'"{payment.terms}" cannot '
                               'pay a presale order; accepted: "deposit" with a deposit_amount'))
    if payment.terms == "deposit":
        if payment.deposit_amount is None:
            reasons.append(refusal("payment.deposit_amount", "required",
                                   'is required when payment.terms is "deposit"'))
        elif not Decimal(0) < payment.deposit_amount < total:
            reasons.append(refusal("payment.deposit_amount", "out_of_range",
                                   f"{payment.deposit_amount} is out of range; accepted: above 0 and "
                                   f"below the order total {total}"))
    elif payment.deposit_amount is not None:
        reasons.append(refusal("payment.deposit_amount", "not_allowed",
                               f'is only accepted with payment.terms "deposit", not "{payment.terms}"'))
    if payment.terms == "cod" and payment.method != "cash_on_delivery":
        reasons.append(refusal("payment.method", "cod_needs_cash_on_delivery", f'"{payment.method}" '
                               'cannot pay on delivery; accepted with terms "cod": "cash_on_delivery"'))
    if payment.method == "cash_on_delivery" and payment.terms != "cod":
        reasons.append(refusal("payment.terms", "cash_on_delivery_needs_cod", f'"{payment.terms}" does '
                               'not fit method "cash_on_delivery"; accepted: "cod"'))
    if payment.method == "credit_terms" and payment.terms != "net_30":
        reasons.append(refusal("payment.terms", "credit_terms_need_net_30", f'"{payment.terms}" does '
                               'not fit method "credit_terms"; accepted: "net_30"'))
    if kind == "cross_border":
        if message.customs is None:
            reasons.append(refusal("customs", "required", "a cross_border order needs customs "
                                   "{recipient_id_number}"))
        for index, line in enumerate(message.lines):
            if not line.hs_code:
                reasons.append(refusal(f"lines[{index}].hs_code", "required",
                                       "is required on cross_border lines (6-10 digit HS code)"))
            elif not _HS_CODE.fullmatch(line.hs_code.replace(".", "")):
                reasons.append(refusal(f"lines[{index}].hs_code", "invalid_hs_code",
                                       f'"{line.hs_code}" is not an HS code; accepted: 6-10 digits, '
                                       'dots allowed, e.g. "8421.39"'))
            if line.declared_value is None:
                reasons.append(refusal(f"lines[{index}].declared_value", "required",
                                       'is required on cross_border lines, e.g. "199.00"'))
    if kind == "group_buy" and message.group_buy is None:
        reasons.append(refusal("group_buy", "required", "a group_buy order needs group_buy "
                               "{group_id, size}"))
    elif kind != "group_buy" and message.group_buy is not None:
        reasons.append(refusal("group_buy", "not_allowed", f'is only accepted on order_type '
                               f'"group_buy", not "{kind}"'))
    return reasons


# ---- the other storefront messages -------------------------------------------------------


def validate_payment(raw: dict[str, Any], *, now: datetime | None = None
                     ) -> PaymentCaptured | list[RejectionReason]:
    message, reasons = parse(PaymentCaptured, raw)
    if message is None:
        return reasons
    reasons += _common(message.channel, message.currency)
    reasons += _instant("captured_at", message.captured_at, now)
    if message.currency:
        reasons += _minor_units(message.currency, iter([("amount", message.amount)]))
    if message.payment_id.startswith(BANK_PAYMENT_PREFIX):
        reasons.append(refusal("payment_id", "reserved_prefix", RESERVED_PAYMENT_ID))
    return reasons or message


_Request = TypeVar("_Request", AmendmentRequested, CancellationRequested, ReturnRequested)


def _request(model: type[_Request], raw: dict[str, Any], now: datetime | None
             ) -> tuple[_Request | None, list[RejectionReason]]:
    """A storefront's request about an order it submitted: channel, ids and instant checked."""
    message, reasons = parse(model, raw)
    if message is None:
        return None, reasons
    reasons += _common(message.channel, None)
    reasons += _request_ids({"channel_order_id": message.channel_order_id,
                             "request_id": message.request_id})
    reasons += _instant("requested_at", message.requested_at, now)
    return message, reasons


def validate_amendment(raw: dict[str, Any], *, catalog: Catalog, now: datetime | None = None,
                       order_type: str | None = None) -> AcceptedAmendment | list[RejectionReason]:
    """Replacement lines and/or shipping address. ``order_type`` (the order's, when known) turns on
    the zero-price rule of submissions; discounts and totals are the lifecycle's to check."""
    message, reasons = _request(AmendmentRequested, raw, now)
    if message is None:
        return reasons
    if message.lines is None and message.shipping_address is None:
        reasons.append(refusal("$", "empty_amendment", "changes nothing; accepted: replacement "
                               "lines and/or a shipping_address"))
    lines: list[OrderLine] | None = None
    subtotal: Decimal | None = None
    if message.lines is not None:
        if not message.lines:
            reasons.append(refusal("lines", "too_few_items", "is empty; accepted: at least one line, "
                                   "or leave lines out to keep the order's lines"))
        lines, sku_reasons = _resolve_lines(message.lines, catalog)
        reasons += sku_reasons + _price_rules(message.lines, order_type)
        subtotal = sum((line.unit_price * line.quantity for line in message.lines), Decimal(0))
    if message.shipping_address is not None:
        reasons += address_reasons(message.shipping_address)
    return reasons or AcceptedAmendment(message, lines, subtotal)


def validate_cancellation(raw: dict[str, Any], *, now: datetime | None = None
                          ) -> CancellationRequested | list[RejectionReason]:
    message, reasons = _request(CancellationRequested, raw, now)
    return reasons if message is None else reasons or message


def validate_return(raw: dict[str, Any], *, catalog: Catalog, now: datetime | None = None
                    ) -> ReturnRequested | list[RejectionReason]:
    """The returned message carries canonical SKUs; discontinued SKUs may still be returned."""
    message, reasons = _request(ReturnRequested, raw, now)
    if message is None:
        return reasons
    first_line: dict[str, int] = {}
    canonical = []
    for index, line in enumerate(message.lines):
        item: CatalogItem | None = catalog.lookup(line.sku)
        if item is None:
            resolved = catalog.resolve(line.sku)
            reasons.append(_sku_refusal(f"lines[{index}].sku", line.sku, "unknown_sku",
                                        resolved.suggestions))
            continue
        if item.sku in first_line:
            reasons.append(refusal(f"lines[{index}].sku", "duplicate_sku", f"{item.sku} is already in "
                                   f"lines[{first_line[item.sku]}]; accepted: each SKU once"))
        first_line.setdefault(item.sku, index)
        canonical.append(line.model_copy(update={"sku": item.sku}))
    return reasons or message.model_copy(update={"lines": canonical})
