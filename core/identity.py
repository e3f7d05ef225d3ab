"""Who the customer is: one set of rules for every path a signal arrives by.

Webhooks, file imports, conversation imports and polling connectors all hand
their identifiers to one :class:`Identity` (built from settings at the entry
point), which decides:

* **which payload keys are identifiers** (:data:`IDENTIFIER_KEYS`): they feed
  ``customer_id`` and never become attributes, whatever path they came by;
* **how each is normalised**: emails trimmed and lower-cased; phones parsed by
  libphonenumber with ``phone_region`` for national formats and written as
  E.164 (so ``(415) 555-0132`` and ``+1 415 555 0132`` are one person);
  account ids with runs of spaces collapsed;
* **which one wins** when several are present: email, else the brand's own
  account id, else phone, else a platform's account id: identifiers that
  other channels share come first, so one person stitches across them;
* **namespaces**: an account id of a platform (an X user id, a Zendesk
  requester id) is prefixed with the platform, so ``x:42`` and ``reddit:42``
  are two people; a brand's own account ids (CRM ids in surveys and exports)
  are not, so they match across the brand's channels.

``customer_id = "cust_" + HMAC-SHA256(secret, kind + ":" + normalised)`` (24 hex
digits). Keyed, so nobody without the secret can test a guessed email against
stored ids; namespaced by kind, so an account id never collides with a phone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Mapping

import phonenumbers

if TYPE_CHECKING:
    from touchpoint.core.settings import Settings

IdentifierKind = Literal["email", "phone", "account"]
_PREFIX = "cust_"
_SPACE = re.compile(r"\s+")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{7,}$")
# Payload keys (case-insensitive) that hold a customer identifier, by kind.
# "guess": a generic key whose value may be any of the three (see guess_kind).
IDENTIFIER_KEYS: dict[str, IdentifierKind | Literal["guess"]] = {
    "email": "email", "e_mail": "email", "email_address": "email", "customer_email": "email", "user_email": "email",
    "phone": "phone", "phone_number": "phone", "customer_phone": "phone", "user_phone": "phone", "mobile": "phone",
    "account_id": "account", "customer_account_id": "account", "user_id": "account", "userid": "account",
    "customer_id": "guess",
}  # fmt: skip


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


def guess_kind(value: str) -> IdentifierKind:
    """What a bare identifier looks like: an email (has @), a phone number, else an account id."""
    value = value.strip()
    if "@" in value:
        return "email"
    if _PHONE_LIKE.match(value) and sum(c.isdigit() for c in value) >= 7:
        return "phone"
    return "account"


def identifier_kind(key: str) -> IdentifierKind | Literal["guess"] | None:
    """The identifier kind a payload key holds, or None when it is not an identifier key."""
    return IDENTIFIER_KEYS.get(key.strip().lower())


@dataclass(frozen=True)
class Identity:
    """The identity rules with this deployment's secret and phone region (module docstring)."""

    secret: str
    phone_region: str = "US"

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Identity":
        return cls(settings.require_customer_id_secret(), settings.phone_region)

    def of(self, kind: IdentifierKind, value: Any, namespace: str | None = None) -> str | None:
        """The customer id for one identifier (None when absent); ``namespace`` scopes a platform's account ids."""
        if value is None or str(value).strip() == "":
            return None
        text = str(value)
        if kind == "account":
            if is_pseudonymous(text):
                return text  # already ours (a re-import of exported rows)
            if namespace:
                text = f"{namespace}:{text}"
        return pseudonymize(kind, text, self.secret, self.phone_region)

    def customer_id(
        self,
        *,
        email: Any = None,
        phone: Any = None,
        account: Any = None,
        account_namespace: str | None = None,
    ) -> str | None:
        """The id of the best identifier given (module docstring: email, brand account, phone, platform account)."""
        if account_namespace:  # a platform's id is known to that platform only: the phone stitches better
            return self.of("email", email) or self.of("phone", phone) or self.of("account", account, account_namespace)
        return self.of("email", email) or self.of("account", account) or self.of("phone", phone)

    def resolve(self, found: Mapping[str, Any], account_namespace: str | None = None) -> str | None:
        """The customer id for identifiers found by :func:`split_identifiers`."""
        return self.customer_id(
            email=found.get("email"), phone=found.get("phone"), account=found.get("account"),
            account_namespace=account_namespace,
        )  # fmt: skip


def split_identifiers(values: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(identifiers by kind, every other value as a string attribute).

    Keys are matched by :data:`IDENTIFIER_KEYS` (nested objects too: the key
    ``customer.email`` is an email); a generic ``customer_id`` is told apart by
    its value (:func:`guess_kind`). Identifier values never reach the
    attributes, whether or not they win (a second email is dropped, not kept
    in clear text). Nested objects become dotted keys, lists of scalars
    comma-joined values.
    """
    found: dict[str, str] = {}
    rest: dict[str, str] = {}
    for key, value in _flatten(values):
        kind = identifier_kind(key.rsplit(".", 1)[-1])
        if kind == "guess":
            kind = "account" if is_pseudonymous(value) else guess_kind(value)
        if kind is not None:
            found.setdefault(kind, value)
        else:
            rest[key] = value
    return found, rest


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    flat: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat += _flatten(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            scalars = [str(v) for v in value if isinstance(v, (str, int, float, bool))]
            if scalars:
                flat.append((name, ",".join(scalars)))
        elif value is not None and value != "":
            flat.append((name, str(value)))
    return flat
