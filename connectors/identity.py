"""Stable pseudonymous customer ids: the same person, the same id, no clear text.

A connector that finds an email, phone number or account id in a payload turns
it into ``customer_id = "cust_" + HMAC-SHA256(secret, kind + ":" + normalised)``
(first 24 hex digits). Keyed, so nobody without the secret can test a guessed
email against stored ids; normalised, so ``Ann@Example.com `` and
``ann@example.com`` are one customer; namespaced by kind, so an account id
never collides with a phone number. Raw emails and phones never reach Kafka
keys or ClickHouse.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

import phonenumbers

IdentifierKind = Literal["email", "phone", "account"]
_PREFIX = "cust_"
_SPACE = re.compile(r"\s+")


def normalise(kind: IdentifierKind, value: str, phone_region: str = "US") -> str:
    """The canonical form of an identifier, so spelling variants hash alike."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        try:
            number = phonenumbers.parse(value, phone_region)
        except phonenumbers.NumberParseException:
            return re.sub(r"[^\d+]", "", value)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _SPACE.sub(" ", value)


def pseudonymize(kind: IdentifierKind, value: str, secret: str, phone_region: str = "US") -> str:
    """``cust_`` + 24 hex digits of a keyed hash of the normalised identifier."""
    if not secret:
        raise ValueError("customer_id_secret is empty; set TOUCHPOINT_CUSTOMER_ID_SECRET to a long random string")
    message = f"{kind}:{normalise(kind, value, phone_region)}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return _PREFIX + digest[:24]


def is_pseudonymous(customer_id: str) -> bool:
    """True for ids made by :func:`pseudonymize` (never an email or a phone)."""
    return customer_id.startswith(_PREFIX) and len(customer_id) == len(_PREFIX) + 24
