"""The storefront message as it arrives: raw JSON types and pydantic's errors in business words.

Numbers are checked on the raw JSON before pydantic, because pydantic would quietly turn
``"2"``/``true``/``2.0`` into a quantity and the float ``199.0`` into a price.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from shared.contract.payloads import RejectionReason
from shared.contract.storefront import OrderSubmitted

EXAMPLE_INSTANT = "2026-11-21T08:00:00+08:00"
_DECIMAL_TEXT = re.compile(r"-?\d+(?:\.\d+)?")
Model = TypeVar("Model", bound=BaseModel)

_CODES = {
    "missing": "required", "extra_forbidden": "unknown_field", "literal_error": "not_allowed",
    "decimal_max_places": "too_many_decimal_places", "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range", "less_than_equal": "out_of_range",
    "string_too_short": "too_short", "string_too_long": "too_long", "too_short": "too_few_items",
    "too_long": "too_many_items", "int_type": "not_an_integer", "int_parsing": "not_an_integer",
    "int_from_float": "not_an_integer", "decimal_type": "not_a_decimal_string",
    "decimal_parsing": "not_a_decimal_string", "finite_number": "not_a_decimal_string",
    "datetime_type": "not_a_datetime", "datetime_parsing": "not_a_datetime",
    "datetime_from_date_parsing": "not_a_datetime", "string_type": "not_a_string",
    "model_type": "not_an_object", "dict_type": "not_an_object", "list_type": "not_a_list",
}


def as_json(value: Any) -> str:
    """A value as the sender wrote it in JSON (``"2"``, ``1.5``, ``true``), cut to a readable size."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "$"


def reason(field: str, code: str, message: str, suggestion: str | None = None) -> RejectionReason:
    return RejectionReason(field=field, code=code, message=message, suggestion=suggestion)


def refusal(field: str, code: str, text: str, suggestion: str | None = None) -> RejectionReason:
    """A reason whose message starts with the field: ``lines[0].sku: unknown SKU ...``."""
    return reason(field, code, f"{field}: {text}", suggestion)


# ---- pydantic errors in business words ---------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


def _accepted_fields(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, str) and current is not None:
            info = current.model_fields.get(part)
            current = _nested_model(info.annotation) if info else None
    return ", ".join(current.model_fields) if current else "the fields of CONTRACT.md"


def _explain(kind: str, ctx: dict[str, Any], value: Any, model: type[BaseModel],
             loc: tuple[int | str, ...], default: str) -> str:
    shown = "an object" if isinstance(value, dict) else "an array" if isinstance(value, list) \
        else as_json(value)
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return f"is not a field here; accepted: {_accepted_fields(model, loc[:-1])}"
    if kind == "literal_error":
        expected = str(ctx.get("expected")).replace("'", '"')
        return f"{shown} is not allowed; accepted: {expected}"
    if kind == "decimal_max_places":
        return f"{shown} has too many decimal places; at most {ctx.get('decimal_places')}, e.g. \"199.00\""
    bounds = {"greater_than": ("above", "gt"), "greater_than_equal": ("at least", "ge"),
              "less_than_equal": ("at most", "le")}
    if kind in bounds:
        word, key = bounds[kind]
        return f"{shown} is out of range; accepted: {word} {ctx.get(key)}"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"is too long; at most {ctx.get('max_length')} characters"
    if kind in ("too_short", "too_long"):
        word, key = ("at least", "min_length") if kind == "too_short" else ("at most", "max_length")
        return f"has {ctx.get('actual_length')} item(s); accepted: {word} {ctx.get(key)}"
    code = _CODES.get(kind, kind)
    if code == "not_an_integer":
        return f"{shown} is not a whole number; send a JSON integer such as 2"
    if code == "not_a_decimal_string":
        return f'{shown} is not a decimal string; send e.g. "199.00"'
    if code == "not_a_datetime":
        return f"{shown} is not an ISO 8601 date-time with offset, e.g. {EXAMPLE_INSTANT}"
    accepted = {"not_a_string": "a JSON string", "not_an_object": "a JSON object",
                "not_a_list": "a JSON array"}
    if code in accepted:
        return f"must be {accepted[code]}, not {type(value).__name__}"
    return default


def reasons_from(error: ValidationError, model: type[BaseModel] = OrderSubmitted
                 ) -> list[RejectionReason]:
    reasons = []
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        code = _CODES.get(item["type"], item["type"])
        if item["type"] == "string_too_short" and (item.get("ctx") or {}).get("min_length") == 1:
            code = "required"  # blank text ("  ") is as missing as no text
        text = _explain(item["type"], dict(item.get("ctx") or {}), item.get("input"), model, loc,
                        item["msg"])
        reasons.append(refusal(field_path(loc), code, text))
    return reasons


# ---- raw JSON types: what pydantic would coerce ------------------------------------------

_RAW_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # message type: (whole numbers, money as decimal strings, instants as strings)
    "order.submitted": (("lines[].quantity", "discounts[].points", "group_buy.size"),
                        ("lines[].unit_price", "lines[].declared_value", "discounts[].amount",
                         "shipping_fee", "payment.deposit_amount"), ("submitted_at",)),
    "payment.captured": ((), ("amount",), ("captured_at",)),
    "order.amendment_requested": (("lines[].quantity",),
                                  ("lines[].unit_price", "lines[].declared_value"), ("requested_at",)),
    "order.cancellation_requested": ((), (), ("requested_at",)),
    "return.requested": (("lines[].quantity",), (), ("requested_at",)),
}


def _values_at(raw: Any, path: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, value) of every present value at ``path`` (``lines[].quantity``)."""
    head, _, rest = path.partition(".")
    name, many = head.removesuffix("[]"), head.endswith("[]")
    if not isinstance(raw, dict) or raw.get(name) is None:
        return
    here = f"{prefix}.{name}" if prefix else name
    found = raw[name]
    if many:
        pairs = [(f"{here}[{i}]", v) for i, v in enumerate(found)] if isinstance(found, list) else []
    else:
        pairs = [(here, found)]
    for where, value in pairs:
        if rest:
            yield from _values_at(value, rest, where)
        elif value is not None:
            yield where, value


def _money_example(value: Any) -> str:
    try:
        return str(Decimal(str(value)).quantize(Decimal("0.01")))
    except ArithmeticError:
        return "199.00"


def raw_type_reasons(raw: dict[str, Any]) -> list[RejectionReason]:
    """Quantities must be JSON integers, money decimal strings, instants strings."""
    integers, money, instants = _RAW_FIELDS.get(str(raw.get("type")), ((), (), ()))
    reasons = []
    for path in integers:
        for where, value in _values_at(raw, path):
            if isinstance(value, bool) or not isinstance(value, int):
                reasons.append(refusal(where, "not_an_integer", f"{as_json(value)} is not a whole number; "
                                       "send a JSON integer such as 2"))
    for path in money:
        for where, value in _values_at(raw, path):
            if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
                what = "a JSON number" if isinstance(value, int | float) else "not a decimal string"
                reasons.append(refusal(where, "not_a_decimal_string", f"{as_json(value)} is {what}; send a "
                                       "decimal string with at most 2 decimal places, e.g. "
                                       f'"{_money_example(value)}"'))
    for path in instants:
        for where, value in _values_at(raw, path):
            if not isinstance(value, str):
                reasons.append(refusal(where, "not_a_datetime", f"{as_json(value)} is not a string; send "
                                       f"an ISO 8601 date-time with offset, e.g. {EXAMPLE_INSTANT}"))
    return reasons


def parse(model: type[Model], raw: dict[str, Any]) -> tuple[Model | None, list[RejectionReason]]:
    """The parsed message (or None) and every reason found: raw types first, then pydantic's."""
    reasons = raw_type_reasons(raw)
    try:
        return model.model_validate(raw), reasons
    except ValidationError as error:
        seen = {r.field for r in reasons}
        return None, reasons + [r for r in reasons_from(error, model) if r.field not in seen]
