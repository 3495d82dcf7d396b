"""What a customer may see without logging in: tokens for tracking links, masked personal data."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


def tracking_token(secret: str, order_id: str) -> str:
    return hmac.new(secret.encode(), order_id.encode(), hashlib.sha256).hexdigest()[:24]


def token_matches(secret: str, order_id: str, token: str) -> bool:
    return hmac.compare_digest(tracking_token(secret, order_id), token)


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def mask_phone(phone: str) -> str:
    digits = [c for c in phone if c.isdigit()]
    return "*" * max(0, len(digits) - 4) + "".join(digits[-4:])


def masked_address(address: dict[str, Any]) -> dict[str, Any]:
    """Enough for a customer to recognise the destination, not enough to find the person."""
    return {
        "recipient": mask_name(str(address.get("recipient", ""))),
        "phone": mask_phone(str(address.get("phone", ""))),
        "country": address.get("country"),
        "province": address.get("province"),
        "city": address.get("city"),
        "district": address.get("district"),
    }
