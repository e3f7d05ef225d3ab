"""PII redaction before anything is stored, without destroying the rest of the text.

Every detector returns spans on the *original* text; overlapping spans are
resolved once and each finding is replaced by a typed placeholder (``[EMAIL]``,
``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[ADDRESS]``, ``[NAME]``), so a placeholder
covers exactly its finding and never a neighbouring word.

* Emails: ``local@domain.tld``, and spelled or spaced forms ("jane at example dot
  com", "jane . doe @ example . com") only with a known top-level domain. An
  ``@handle`` is never an email.
* Phones: libphonenumber (``phonenumbers``, leniency VALID) for every region in
  ``phone_regions``, so national formats ("07911 123456" with GB, "06 12 34 56 78"
  with FR) are found where the brand says its customers live; international
  ``+44``/``0044`` numbers in any case.
* Cards: Luhn, a known issuer prefix and that issuer's length; IBANs: the
  country's registered length and the mod-97 check.
* Addresses: US/UK street lines, UK postcodes, German/Dutch/Nordic
  ("Hauptstraße 5"), French ("12 rue de la Paix") and Spanish/Italian/Portuguese
  ("Calle Mayor 10") street lines with an optional postcode and city.
  Free-form addresses without a street word and a number are not found.
* Names: only after a cue ("my name is", "Mrs", "agent", a sign-off). A bare
  name is not found: no maintained NER model that runs offline ships on PyPI.

Look-alikes are kept: handles, hashtags, URLs, flight numbers, aircraft
registrations, booking codes and numbers after a reference word (order,
tracking, booking, bag claim...) — see models/pii_rules.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import phonenumbers

from touchpoint.models import pii_rules as rules

# A stronger finding wins an overlap; checksum-validated findings and emails also beat look-alikes
# (and handles, when a brand asks to mask them).
PRIORITY = ("email", "iban", "card", "phone", "address", "name")
VALIDATED = frozenset({"email", "iban", "card", "handle"})


@dataclass(frozen=True)
class Redaction:
    text: str
    found: tuple[str, ...]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end


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
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def card_valid(candidate: str) -> bool:
    """Luhn, an issuer prefix with that issuer's length, and the way people write cards (groups or none)."""
    digits = re.sub(r"\D", "", candidate)
    separators = set(re.findall(r"\D", candidate))
    if len(separators) > 1:
        return False
    groups = [len(g) for g in re.split(r"\D", candidate)]
    if separators and groups not in ([4, 4, 4, 4], [4, 4, 4, 4, 3], [4, 6, 5], [4, 6, 4], [4, 4, 4, 1], [4, 4, 5]):
        return False
    if not any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in rules.CARD_ISSUERS):
        return False
    return luhn_valid(digits)


def _emails(text: str) -> Iterator[Span]:
    for match in rules.EMAIL_PLAIN.finditer(text):
        yield Span(match.start(), match.end(), "email")
    for match in rules.EMAIL_SPELLED.finditer(text):
        if (match.group("tld") or match.group("tld2") or match.group("tld3")).lower() in rules.SPELLED_TLDS:
            yield Span(match.start(), match.end(), "email")


def _ibans(text: str) -> Iterator[Span]:
    """Walk from each country code: exactly the country's length, compact or in groups of four."""
    for match in rules.IBAN_START.finditer(text):
        length = rules.IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        count, position, spaced = 4, match.end(), False
        while count < length and position < len(text):
            char = text[position]
            if char.isascii() and char.isalnum():
                count, position = count + 1, position + 1
            elif char == " " and count % 4 == 0 and position + 1 < len(text) and text[position + 1].isalnum():
                spaced, position = True, position + 1
            else:
                break
        if count != length or (position < len(text) and text[position].isalnum()):
            continue
        candidate = text[match.start() : position]
        if iban_valid(candidate) and (spaced or " " not in candidate):
            yield Span(match.start(), position, "iban")


def _cards(text: str) -> Iterator[Span]:
    for match in rules.CARD_CANDIDATE.finditer(text):
        candidate = match.group(0).rstrip(" -.")
        if card_valid(candidate):
            yield Span(match.start(), match.start() + len(candidate), "card")


def _addresses(text: str) -> Iterator[Span]:
    for pattern in rules.ADDRESSES:
        for match in pattern.finditer(text):
            yield Span(match.start(), match.end(), "address")
    for match in rules.UK_POSTCODE.finditer(text):
        if match.group("area") in rules.UK_POSTCODE_AREAS:
            yield Span(match.start(), match.end(), "address")
    for match in rules.UK_POSTCODE_CUED.finditer(text):
        if match.group("area") in rules.UK_POSTCODE_AREAS:
            yield Span(match.start("code"), match.end("code"), "address")


def _names(text: str) -> Iterator[Span]:
    for pattern in rules.NAME_CUES:
        for match in pattern.finditer(text):
            words = re.sub(r"['’]s$", "", match.group("name")).split()  # not the possessive "'s"
            while words and words[-1] in rules.NOT_NAMES:
                words.pop()
            if words and words[0] not in rules.NOT_NAMES:
                start = match.start("name")
                yield Span(start, start + len(" ".join(words)) if len(words) == 1 else _end_of(text, start, words), "name")


def _end_of(text: str, start: int, words: list[str]) -> int:
    """End offset of ``words`` as they appear (with their original spacing) from ``start``."""
    position = start
    for word in words:
        position = text.index(word, position) + len(word)
    return position


def _look_alikes(text: str) -> list[Span]:
    spans = [Span(m.start(), m.end(), "keep") for p in (rules.URL, rules.HANDLE, rules.HASHTAG, rules.FLIGHT, rules.TAIL,
                                                        rules.CODE) for m in p.finditer(text)]  # fmt: skip
    spans += [Span(m.start("ref"), m.end("ref"), "keep") for m in rules.REFERENCE.finditer(text)]
    return spans


class PiiRedactor:
    """Finds and masks PII; ``redact_handles`` also masks @mentions.

    ``phone_region`` (the default region, as before) and ``phone_regions`` (more
    regions whose national formats to read) say where the brand's customers' numbers come from.
    """

    def __init__(self, phone_region: str = "US", redact_handles: bool = False, phone_regions: Sequence[str] = ()) -> None:
        self.phone_region = phone_region
        self.phone_regions = tuple(dict.fromkeys(r.upper() for r in (phone_region, *phone_regions) if r))
        self.redact_handles = redact_handles

    def spans(self, text: str) -> list[Span]:
        """The findings to mask, non-overlapping, in text order."""
        protected = _look_alikes(text)
        candidates = [*_emails(text), *_ibans(text), *_cards(text), *self._phones(text), *_addresses(text), *_names(text)]
        if self.redact_handles:
            candidates += [Span(m.start(), m.end(), "handle") for m in rules.HANDLE.finditer(text)]
        candidates = [c for c in candidates if c.kind in VALIDATED or not any(c.overlaps(p) for p in protected)]
        return _resolve(candidates)

    def redact(self, text: str | None) -> Redaction:
        if not text:
            return Redaction(text or "", ())
        spans = self.spans(text)
        if not spans:
            return Redaction(text, ())
        parts, position = [], 0
        for span in spans:
            parts += [text[position : span.start], f"[{span.kind.upper()}]"]
            position = span.end
        parts.append(text[position:])
        return Redaction("".join(parts), tuple(dict.fromkeys(s.kind for s in spans)))

    def _phones(self, text: str) -> Iterable[Span]:
        if not rules.DIGIT_RUN.search(text):
            return []
        # "00 44 20..." is the international prefix outside North America: read it as "+44 20..."
        # (same length, so offsets still fit the original text).
        probe = re.sub(r"(?<![\d+])00(?=\s?[1-9])", " +", text)
        found = []
        for region in self.phone_regions:
            for match in phonenumbers.PhoneNumberMatcher(probe, region, leniency=phonenumbers.Leniency.VALID):
                start = match.start
                if probe[start - 1 : start] == " " and text[start - 1 : start] == "0":
                    start -= 1  # the "0" of "00" belongs to the number
                found.append(Span(start, match.end, "phone"))
        return found


def _resolve(candidates: list[Span]) -> list[Span]:
    """Keep the strongest of overlapping findings (PRIORITY order, then the longer), in text order."""
    ranked = sorted(candidates, key=lambda s: (PRIORITY.index(s.kind) if s.kind in PRIORITY else len(PRIORITY),
                                               -(s.end - s.start), s.start))  # fmt: skip
    kept: list[Span] = []
    for span in ranked:
        if not any(span.overlaps(k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
