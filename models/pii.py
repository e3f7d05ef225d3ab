"""PII redaction before anything is stored: emails, phone numbers, payment cards, IBANs.

Each finding is replaced by a typed placeholder (``[EMAIL]``, ``[PHONE]``...)
so analysts still see that a customer left contact details. Phone numbers come
from libphonenumber (``phonenumbers``); card numbers must pass the Luhn check;
IBANs must pass their mod-97 check, so order numbers are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+\s*(?:@|\(at\)|\[at\])\s*[A-Za-z0-9.\-]+\s*(?:\.|\(dot\)|\[dot\])\s*[A-Za-z]{2,}")
CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ \-.]?){12,18}\d(?!\d)")
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")


@dataclass(frozen=True)
class Redaction:
    text: str
    found: tuple[str, ...]


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


class PiiRedactor:
    """Finds and masks PII; ``redact_handles`` also masks @mentions."""

    def __init__(self, phone_region: str = "US", redact_handles: bool = False) -> None:
        self.phone_region = phone_region
        self.redact_handles = redact_handles

    def redact(self, text: str | None) -> Redaction:
        if not text:
            return Redaction(text or "", ())
        found: list[str] = []
        text = self._sub(EMAIL, text, "[EMAIL]", "email", found)
        text = self._sub_checked(IBAN_CANDIDATE, text, "[IBAN]", "iban", found, iban_valid)
        text = self._sub_checked(
            CARD_CANDIDATE, text, "[CARD]", "card", found, lambda m: luhn_valid(re.sub(r"\D", "", m))
        )
        text = self._redact_phones(text, found)
        if self.redact_handles:
            text = self._sub(HANDLE, text, "[HANDLE]", "handle", found)
        return Redaction(text, tuple(dict.fromkeys(found)))

    @staticmethod
    def _sub(pattern: re.Pattern[str], text: str, placeholder: str, kind: str, found: list[str]) -> str:
        new, count = pattern.subn(placeholder, text)
        if count:
            found.append(kind)
        return new

    @staticmethod
    def _sub_checked(pattern, text, placeholder, kind, found, is_valid) -> str:  # type: ignore[no-untyped-def]
        def replace(match: re.Match[str]) -> str:
            if is_valid(match.group(0)):
                found.append(kind)
                return placeholder
            return match.group(0)

        return pattern.sub(replace, text)

    def _redact_phones(self, text: str, found: list[str]) -> str:
        matches = list(phonenumbers.PhoneNumberMatcher(text, self.phone_region, leniency=phonenumbers.Leniency.VALID))
        for match in reversed(matches):
            text = text[: match.start] + "[PHONE]" + text[match.end :]
        if matches:
            found.append("phone")
        return text
