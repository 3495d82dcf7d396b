"""The customer of an order as notify keeps it, recipients, and masking personal data for staff."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "unknown"
CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class OrderCustomer:
    """The customer of one order, from ``order.placed``; personal data stays in notify's store."""

    order_id: str
    customer_id: str
    name: str
    email: str | None
    phone: str | None
    channel: str
    channel_order_id: str
    address: str = ""

    @classmethod
    def from_order_placed(cls, payload: Mapping[str, Any]) -> OrderCustomer:
        customer = payload.get("customer") or {}
        return cls(
            order_id=str(payload["order_id"]),
            customer_id=str(customer.get("id") or UNKNOWN),
            name=str(customer.get("name") or ""),
            email=_text_or_none(customer.get("email")),
            phone=_text_or_none(customer.get("phone")),
            channel=str(payload.get("channel") or ""),
            channel_order_id=str(payload.get("channel_order_id") or ""),
            address=address_text(payload.get("shipping_address") or {}),
        )


def _text_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def address_text(address: Mapping[str, Any]) -> str:
    """A shipping address on one line: recipient, street, city, postcode, country."""
    parts = (address.get(key) for key in ("recipient", "line1", "line2", "district", "city",
                                          "province", "postcode", "country"))
    return ", ".join(str(part) for part in parts if part not in (None, ""))


def mask_email(email: str) -> str:
    """``wf@example.com`` -> ``w*@example.com``: enough for staff to recognise, not to write to."""
    local, at, domain = email.partition("@")
    if not at:
        return mask_phone(email)
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


def mask_phone(phone: str) -> str:
    """``+8613800138000`` -> ``+*********8000``: only the last four digits stay visible."""
    digits = sum(ch.isdigit() for ch in phone)
    keep = 4 if digits > 6 else 0
    masked: list[str] = []
    seen = 0
    for ch in phone:
        if ch.isdigit():
            seen += 1
            masked.append(ch if seen > digits - keep else "*")
        else:
            masked.append(ch)
    return "".join(masked)


def masked_contact(customer: OrderCustomer | None) -> str:
    if customer is None:
        return UNKNOWN
    if customer.email:
        return mask_email(customer.email)
    if customer.phone:
        return mask_phone(customer.phone)
    return "no contact on file"


def customer_recipient(customer_id: str) -> str:
    return f"{CUSTOMER}:{customer_id}"


def role_recipient(role: str) -> str:
    return f"role:{role}"


def parse_recipient(recipient: str) -> tuple[str, str]:
    """``customer:C-1001`` -> (``customer``, ``C-1001``); ValueError with what is accepted."""
    kind, sep, ident = recipient.partition(":")
    if not sep or kind not in (CUSTOMER, "role") or not ident.strip():
        raise ValueError(
            f"recipient {recipient!r} must be 'customer:<customer id>' or 'role:<staff role>'"
        )
    return kind, ident
