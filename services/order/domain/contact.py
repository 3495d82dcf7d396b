"""Contact details on storefront messages: phone numbers, e-mail addresses, shipping addresses.

Each rule gives a field-level reason (field, code, what would be accepted), like the rest of the
intake validation (``validation.py``).
"""

from __future__ import annotations

import re

from services.order.domain.wire import refusal
from shared.contract.payloads import RejectionReason
from shared.contract.storefront import Address

_ISO_3166_ALPHA_2 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
ISO_COUNTRIES = frozenset(_ISO_3166_ALPHA_2.split())

PHONE_RULE = "a mainland mobile (11 digits starting 13-19, optionally +86) or E.164 (+ and 8-15 digits)"
EMAIL_RULE = "an email address (one @, a domain with a dot, no spaces, at most 254 characters)"
_MAINLAND_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_E164 = re.compile(r"\+[1-9]\d{7,14}")
_EMAIL = re.compile(r"[^@\s]{1,64}@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}")


def normalise_phone(phone: str) -> str:
    """Digits only; a mainland mobile loses its +86 / 86 country prefix (``13800138000``)."""
    compact = re.sub(r"[\s\-()]", "", phone)
    mobile = _MAINLAND_MOBILE.fullmatch(compact)
    return mobile.group(1) if mobile else re.sub(r"\D", "", compact)


def is_phone(phone: str) -> bool:
    compact = re.sub(r"[\s\-]", "", phone)
    return bool(_MAINLAND_MOBILE.fullmatch(compact) or _E164.fullmatch(compact))


def phone_reasons(field: str, phone: str | None) -> list[RejectionReason]:
    if phone is None or is_phone(phone):
        return []
    return [refusal(field, "invalid_phone", f'"{phone}" is not {PHONE_RULE}')]


def is_email(email: str) -> bool:
    return len(email) <= 254 and bool(_EMAIL.fullmatch(email))


def address_reasons(address: Address, prefix: str = "shipping_address") -> list[RejectionReason]:
    """Completeness and formats of a shipping address (pydantic checked presence of the rest)."""
    reasons = phone_reasons(f"{prefix}.phone", address.phone)
    if address.country not in ISO_COUNTRIES:
        hint = address.country.upper() if address.country.upper() in ISO_COUNTRIES else None
        reasons.append(refusal(f"{prefix}.country", "invalid_country", f'"{address.country}" is not an '
                               'ISO 3166 alpha-2 country code in upper case, e.g. "CN"', hint))
    if address.country == "CN":
        for name, example in (("province", "浙江省"), ("district", "西湖区")):
            if not getattr(address, name):
                reasons.append(refusal(f"{prefix}.{name}", "required",
                                       f"is required for an address in CN, e.g. {example}"))
        if address.postal_code is not None and not re.fullmatch(r"\d{6}", address.postal_code):
            reasons.append(refusal(f"{prefix}.postal_code", "invalid_postal_code",
                                   f'"{address.postal_code}" is not a 6-digit postal code, e.g. "310000"'))
    return reasons
