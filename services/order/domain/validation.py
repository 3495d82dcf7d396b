"""Intake validation of storefront messages: field-level reasons, never a silent drop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from services.order.domain.catalog import Catalog
from shared.contract.payloads import OrderLine, RejectionReason
from shared.contract.storefront import MODEL_BY_TYPE, OrderSubmitted, PaymentCaptured
from shared.money import MINOR_UNITS, known_currency

REGISTERED_CHANNELS: tuple[str, ...] = ("tmall", "jd", "pdd", "web", "pos")
MAX_MESSAGE_BYTES = 64 * 1024
CLOCK_SKEW = timedelta(minutes=5)

_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "literal_error": "not_allowed",
    "decimal_max_places": "too_many_decimal_places",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_short": "too_few_items",
    "too_long": "too_many_items",
}


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def reasons_from(error: ValidationError) -> list[RejectionReason]:
    reasons = []
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        code = _CODES.get(item["type"], item["type"])
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required"
        reasons.append(RejectionReason(field=field_path(loc), code=code, message=message))
    return reasons


def reason(field: str, code: str, message: str, suggestion: str | None = None) -> RejectionReason:
    return RejectionReason(field=field, code=code, message=message, suggestion=suggestion)


@dataclass(frozen=True, slots=True)
class AcceptedSubmission:
    message: OrderSubmitted
    lines: list[OrderLine]
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal


def envelope_reasons(raw: Any, size: int) -> list[RejectionReason]:
    """Checks before the message's own shape: size, JSON object, known ``type``."""
    if size > MAX_MESSAGE_BYTES:
        return [reason("$", "too_large", f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}")]
    if not isinstance(raw, dict):
        return [reason("$", "not_an_object", "a storefront message must be a JSON object")]
    kind = raw.get("type")
    if kind not in MODEL_BY_TYPE:
        return [reason("type", "unknown_type", f"unknown message type {kind!r}; accepted: "
                       + ", ".join(MODEL_BY_TYPE))]
    return []


def _common(channel: str, currency: str | None, field: str = "currency") -> list[RejectionReason]:
    reasons = []
    if channel not in REGISTERED_CHANNELS:
        reasons.append(reason("channel", "unregistered_channel",
                              f"channel {channel!r} is not registered; accepted: "
                              + ", ".join(REGISTERED_CHANNELS)))
    if currency is not None and not known_currency(currency):
        reasons.append(reason(field, "unknown_currency", f"unknown currency {currency!r}; accepted: "
                              + ", ".join(MINOR_UNITS)))
    return reasons


def validate_submission(raw: dict[str, Any], *, catalog: Catalog, now: datetime
                        ) -> AcceptedSubmission | list[RejectionReason]:
    try:
        message = OrderSubmitted.model_validate(raw)
    except ValidationError as error:
        return reasons_from(error)
    reasons = _common(message.channel, message.currency)
    if message.submitted_at.tzinfo is None:
        reasons.append(reason("submitted_at", "missing_offset",
                              "submitted_at needs a UTC offset, e.g. 2026-11-21T08:00:00+08:00"))
    elif message.submitted_at > now + CLOCK_SKEW:
        reasons.append(reason("submitted_at", "in_future",
                              f"submitted_at {message.submitted_at.isoformat()} is in the future"))
    lines: list[OrderLine] = []
    for index, line in enumerate(message.lines):
        resolved = catalog.resolve(line.sku)
        if resolved.item is None:
            if resolved.code == "inactive_sku":
                reasons.append(reason(f"lines[{index}].sku", "inactive_sku",
                                      f"SKU {line.sku!r} is no longer sold"))
            else:
                hint = resolved.suggestions[0] if resolved.suggestions else None
                message_text = f"unknown SKU {line.sku!r}" + (f' (did you mean "{hint}"?)' if hint else "")
                reasons.append(reason(f"lines[{index}].sku", "unknown_sku", message_text, hint))
            continue
        lines.append(OrderLine(line_no=index + 1, sku=resolved.item.sku, name=resolved.item.name,
                               quantity=line.quantity, unit_price=line.unit_price,
                               tax_rate=resolved.item.tax_rate, gift_bundle=line.gift_bundle))
    subtotal = sum((line.unit_price * line.quantity for line in message.lines), Decimal(0))
    discount_total = sum((d.amount for d in message.discounts), Decimal(0))
    if discount_total > subtotal:
        reasons.append(reason("discounts", "exceeds_subtotal",
                              f"discounts {discount_total} exceed the subtotal {subtotal}"))
    total = subtotal - discount_total + message.shipping_fee
    reasons += _payment_rules(message, total)
    if reasons:
        return reasons
    return AcceptedSubmission(message, lines, subtotal, discount_total, total)


def _payment_rules(message: OrderSubmitted, total: Decimal) -> list[RejectionReason]:
    reasons = []
    payment = message.payment
    if message.order_type == "presale" and payment.terms != "deposit":
        reasons.append(reason("payment.terms", "presale_needs_deposit",
                              'a presale order needs payment.terms "deposit"'))
    if payment.terms == "deposit":
        if payment.deposit_amount is None:
            reasons.append(reason("payment.deposit_amount", "required",
                                  'is required when payment.terms is "deposit"'))
        elif not Decimal(0) < payment.deposit_amount < total:
            reasons.append(reason("payment.deposit_amount", "out_of_range",
                                  f"deposit must be above 0 and below the total {total}"))
    if message.order_type == "cross_border":
        if message.customs is None:
            reasons.append(reason("customs", "required", "a cross_border order needs customs data"))
        for index, line in enumerate(message.lines):
            if not line.hs_code:
                reasons.append(reason(f"lines[{index}].hs_code", "required",
                                      "cross_border lines need an hs_code"))
            if line.declared_value is None:
                reasons.append(reason(f"lines[{index}].declared_value", "required",
                                      "cross_border lines need a declared_value"))
    if message.order_type == "group_buy" and message.group_buy is None:
        reasons.append(reason("group_buy", "required", "a group_buy order needs group_buy {group_id, size}"))
    return reasons


def validate_payment(raw: dict[str, Any]) -> PaymentCaptured | list[RejectionReason]:
    try:
        message = PaymentCaptured.model_validate(raw)
    except ValidationError as error:
        return reasons_from(error)
    reasons = _common(message.channel, message.currency)
    return reasons or message
