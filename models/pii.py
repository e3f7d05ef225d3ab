"""PII redaction before anything is stored: emails, phones, cards, IBANs, street addresses.

Each finding is replaced by a typed placeholder (``[EMAIL]``, ``[PHONE]``...)
so analysts still see that a customer left contact details. Phone numbers come
from libphonenumber (``phonenumbers``, leniency VALID); card numbers must pass
the Luhn check; IBANs their mod-97 check, so order numbers are left alone.
Numbers right after "order", "invoice", "tracking", "ref"... are references,
not phones. Street addresses: US-style "123 Main Street (Apt 4)" and UK
postcodes ("SW1A 1AA"); free-form addresses without a number and a street
word are not caught (a known limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

_LOCAL = r"[A-Za-z0-9_%+\-]+(?:\s?\.\s?[A-Za-z0-9_%+\-]+)*"
_DOMAIN = r"[A-Za-z0-9\-]+(?:\s?\.\s?[A-Za-z0-9\-]+)*"
EMAIL = re.compile(
    rf"{_LOCAL}\s*(?:@|\(at\)|\[at\])\s*{_DOMAIN}\s*(?:\.|\(dot\)|\[dot\])\s*[A-Za-z]{{2,}}"
    rf"|{_LOCAL}\s+at\s+[A-Za-z0-9\-]+\s+dot\s+[A-Za-z]{{2,}}\b"
)
_STREET_WORDS = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Parkway|Pkwy"
    r"|Highway|Hwy|Square|Sq|Way|Close|Crescent"
)
STREET = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'\-]+\s+){{1,3}}(?:{_STREET_WORDS})\b\.?"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s*[\w\-]+)?"
)
UK_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d[A-Z]{2}\b")
REFERENCE_WORDS = re.compile(
    r"(?:order|invoice|tracking|ticket|case|ref|reference|confirmation|booking|account|serial|sku|model|item)"
    r"\s*(?:no\.?|number|num|id|#|:)?\s*#?\s*$",
    re.IGNORECASE,
)
CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ \-.]?){12,18}\d(?!\d)")
IBAN_CANDIDATE = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30}\b")
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
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha():
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
        text = self._sub(STREET, text, "[ADDRESS]", "address", found)
        text = self._sub(UK_POSTCODE, text, "[ADDRESS]", "address", found)
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
        # "00 44 20..." is the international prefix outside North America: read it as "+44 20..."
        # (same length, so match offsets still fit the original text).
        probe = re.sub(r"(?<![\d+])00(?=\s?[1-9])", " +", text)
        matches = [
            m for m in phonenumbers.PhoneNumberMatcher(probe, self.phone_region, leniency=phonenumbers.Leniency.VALID)
            if not REFERENCE_WORDS.search(text[max(0, m.start - 24) : m.start])
        ]
        for match in reversed(matches):
            start = match.start - 1 if probe[match.start - 1 : match.start] == " " and text[match.start - 1] == "0" else match.start
            text = text[:start] + "[PHONE]" + text[match.end :]
        if matches:
            found.append("phone")
        return text
