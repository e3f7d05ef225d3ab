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


_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,}$")


def guess_kind(value: str) -> IdentifierKind:
    """What a bare identifier looks like: an email (has @), a phone number, else an account id."""
    value = value.strip()
    if "@" in value:
        return "email"
    if _PHONE_LIKE.match(value) and sum(c.isdigit() for c in value) >= 7:
        return "phone"
    return "account"


def customer_id_from(
    secret: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    account: str | None = None,
    phone_region: str = "US",
) -> str | None:
    """The pseudonymous id for the best identifier found: email, else account id, else phone.

    Email first because it is the identifier most channels share (surveys,
    help desks, shops), so the same person stitches across them. An account id
    that is already pseudonymous (``cust_...``) is kept as it is.
    """
    if email and email.strip():
        return pseudonymize("email", email, secret, phone_region)
    if account and str(account).strip():
        account = str(account)
        return account if is_pseudonymous(account) else pseudonymize("account", account, secret, phone_region)
    if phone and phone.strip():
        return pseudonymize("phone", phone, secret, phone_region)
    return None
