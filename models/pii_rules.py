"""The patterns and tables behind PII redaction (models/pii.py): what PII looks like, and what only looks like it.

Two families. *Findings* are personal data to mask: emails, phones, payment
cards, IBANs, street addresses, names after a cue. *Look-alikes* are tokens a
customer-service message is full of that must survive: @handles, #hashtags,
URLs, flight numbers (UA647, BA 283), aircraft registrations (N12345, G-EUPT),
booking codes (Q7XK2P) and numbers named by a reference word (order, tracking,
booking, bag claim...). A weak finding (phone, address, name) that overlaps a
look-alike is dropped; a checksum-validated one (card, IBAN) or an email is not.
"""

from __future__ import annotations

import re

# --- emails -------------------------------------------------------------------------------------
# Top-level domains accepted where an address is spelled out or spaced ("jane . doe @ example . com",
# "jane at example dot com"): a list, so "@JetBlue. Next" or "look at it dot Then" are not emails.
SPELLED_TLDS = frozenset(
    "com net org edu gov mil int info biz io co me tv us uk de fr es it nl be ch at se no dk fi pl pt ie ca au nz "
    "in jp cn br mx ru za ar cl eu app dev ai online shop store xyz club site tech email mail live".split()
)
_WORD = r"[A-Za-z0-9_%+\-]+"
# local@domain.tld with nothing spaced: any TLD of two or more letters
EMAIL_PLAIN = re.compile(rf"(?<![\w.@]){_WORD}(?:\.{_WORD})*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{{2,}}\b")
# spaced or obfuscated: the TLD must be a known one (checked in code, group "tld"). "JANE.DOE @EXAMPLE.COM"
# (an @ that looks like a handle's) only with an unspaced domain, so "Thanks @JetBlue. Next up" stays text.
_SPELLED_DOT = r"\s*(?:\.|\(dot\)|\[dot\])\s*|\s+dot\s+"
_PART = r"[A-Za-z0-9\-]+"
EMAIL_SPELLED = re.compile(
    rf"(?<![\w.@])(?=[\w%+\-]*[A-Za-z]){_WORD}(?:\s?\.\s?{_WORD})*(?:"  # a local part with a letter
    # jane(at)example(dot)com, jane . doe @ example . com
    rf"(?:\s*(?:\(at\)|\[at\])\s*|\s+@\s+|@\s+){_PART}(?:(?:{_SPELLED_DOT}){_PART})*(?:{_SPELLED_DOT})(?P<tld>[A-Za-z]{{2,}})"
    # jane at example dot com (a spelled "dot": "look at example.com" is a sentence)
    rf"|\s+at\s+{_PART}(?:\s+dot\s+{_PART})*\s+dot\s+(?P<tld2>[A-Za-z]{{2,}})"
    # JANE.DOE @EXAMPLE.COM
    rf"|\s+@{_PART}(?:\.{_PART})*\.(?P<tld3>[A-Za-z]{{2,}}))\b",
    re.IGNORECASE,
)

# --- payment cards: Luhn plus a known issuer prefix and length ---------------------------------
CARD_CANDIDATE = re.compile(r"(?<![\d\w])(?:\d[ \-.]?){12,18}\d(?![\d\w])")
CARD_ISSUERS = (  # (prefix pattern, allowed lengths)
    (re.compile(r"4"), (13, 16, 19)),  # Visa
    (re.compile(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"), (16,)),  # Mastercard
    (re.compile(r"3[47]"), (15,)),  # American Express
    (re.compile(r"6(?:011|5|4[4-9])"), (16, 19)),  # Discover
    (re.compile(r"35(?:2[89]|[3-8]\d)"), (16, 19)),  # JCB
    (re.compile(r"3(?:0[0-5]|[68])"), (14, 16)),  # Diners Club
    (re.compile(r"62"), (16, 17, 18, 19)),  # UnionPay
    (re.compile(r"5[06-9]|6\d"), (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro
)

# --- IBAN: country code, length per country (SWIFT IBAN registry), mod-97 --------------------------
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
IBAN_START = re.compile(r"(?<![\w])([A-Za-z]{2})(\d{2})")

# --- street addresses ------------------------------------------------------------------------------
_US_UK_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Parkway|Pkwy"
    r"|Highway|Hwy|Square|Sq|Way|Close|Crescent|Gardens|Grove|Mews|Row"
)
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s*[\w\-]+)?"
_CAP = r"[A-ZÀ-Ý][\wÀ-ÿ'’\-]*"
# after any street: ", 10115 Berlin" / ", 75002 Paris" / ", 1017 AB Amsterdam" / ", Springfield, IL 62704"
_POSTAL_CITY = rf"(?:,?\s+\d{{4,5}}(?:\s?[A-Z]{{2}})?\s+{_CAP}(?:[ \-]{_CAP})?)?"
ADDRESSES = (
    # US/UK/AU/CA: "123 Main Street, Apt 4B", "10 Downing St"
    re.compile(rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:{_CAP}\s+){{1,3}}(?:{_US_UK_STREET})\b\.?{_UNIT}"),
    # German/Dutch/Nordic: the street type is a suffix, the number follows ("Hauptstraße 5", "Keizersgracht 123")
    re.compile(
        rf"\b{_CAP}(?:straße|strasse|str\.|weg|allee|platz|gasse|damm|ufer|chaussee|straat|laan|gracht|plein"
        rf"|kade|singel|dijk|steeg|vej|gatan|vägen|veien|gata)\s+\d{{1,4}}\s?[a-z]?\b{_POSTAL_CITY}"
    ),
    # French: "12 rue de la Paix", "5 bis avenue Victor Hugo" (the street type in any case, the name capitalised)
    re.compile(
        r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route"
        rf"|cours)\s+(?:(?:de|du|des|de la|de l'|d'|l')\s*)?{_CAP}(?:\s+(?:de\s+|du\s+|la\s+)?{_CAP}){{0,3}}"
        rf"{_POSTAL_CITY}"
    ),
    # Spanish/Italian/Portuguese: the street type first, the number last ("Calle Mayor 10", "Via Roma 12")
    re.compile(
        r"\b(?:Calle|C/|Avenida|Avda\.?|Plaza|Paseo|Carrer|Camino|Via|Viale|Piazza|Corso|Largo|Rua|Travessa|Praça)"
        rf"\s+(?:(?:de|del|la|las|los|da|do|dos|das|di|della|dei|delle)\s+)*{_CAP}(?:\s+{_CAP}){{0,2}},?\s*"
        rf"(?:n[º°o]\.?\s*)?\d{{1,4}}\b{_POSTAL_CITY}"
    ),
)
UK_POSTCODE_AREAS = frozenset(
    "AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E EC EH EN EX FK "
    "FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK ML N NE NG NN "
    "NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW "
    "UB W WA WC WD WF WN WR WS WV YO ZE".split()
)
# "SW1A 1AA" with its space; written without one ("SW1A1AA") only after a cue word (tail numbers look alike)
UK_POSTCODE = re.compile(r"\b(?P<area>[A-Z]{1,2})\d[A-Z\d]?\s\d[A-Z]{2}\b")
UK_POSTCODE_CUED = re.compile(
    r"(?i:post\s?code|postal code|zip)\s*(?:is|:)?\s*(?P<code>(?P<area>[A-Z]{1,2})\d[A-Z\d]?\s?\d[A-Z]{2})\b"
)

# --- names: only after a cue; a bare name is not found (no maintained offline NER on PyPI) -----------------
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+(?:['’\-][A-ZÀ-ÖØ-Þ]?[a-zà-öø-ÿ]{2,})*"  # Anna, D'Amato, Jean-Luc
_NAME = rf"(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})"
NAME_CUES = (
    re.compile(rf"(?i:\bmy name is|\bmy name's|\bname:|\bi am called|(?:^|\bhi|\bhello|\bhey)[,!]?\s*this is)\s+{_NAME}"),
    re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+{_NAME}"),
    re.compile(rf"(?i:\b(?:(?:kind |best )?regards|sincerely|cheers|best wishes),?|\bbest,)\s*\n?\s*{_NAME}\s*[.!]?\s*$"),
    re.compile(rf"(?i:\b(?:thanks|thank you),?)[ \t]*\n\s*{_NAME}\s*[.!]?\s*$"),
    # a lowercase role word ("the agent Marcus"); a capitalised one is a headline or a title ("Bus Driver Charged")
    re.compile(
        r"\b(?:agent|rep|representative|attendant|supervisor|manager|associate|waiter|waitress|driver|courier"
        rf"|advisor|adviser|banker|teller|technician|stylist)(?:\s+(?:named|called))?\s+{_NAME}"
    ),
)
NOT_NAMES = frozenset(
    "I A The This That It Is Was Thanks Thank You Your Yours My We Our They He She Today Tomorrow Yesterday Monday "
    "Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August September "
    "October November December Customer Service Support Team Sir Madam Please Again Still Not No Yes Why How What "
    "When Where Who Ok Okay And But So Just Never Always Here There Sorry Hello Hi Dear All Everyone President "
    "Senator Governor Mayor Judge Justice Secretary Chairman Speaker Prime Minister".split()
)

# --- look-alikes that must survive ------------------------------------------------------------------------
URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
HANDLE = re.compile(r"(?<![\w.@])@\w{1,30}")
HASHTAG = re.compile(r"(?<![\w&])#[A-Za-z_]\w*")
# IATA designator + number: UA647, UA 647, BA0283, B6 123, 9W 12 (uppercase designators only)
FLIGHT = re.compile(r"\b(?:[A-Z]{2}|[A-Z]\d|\d[A-Z])\s?\d{1,4}\b(?!\s\d[A-Z]{2}\b)")  # not "EC1 2AB" (a postcode)
# aircraft registrations: US N-numbers (no I or O), ICAO prefix + dash (G-EUPT, D-AIMA, VH-OQA, 9V-SKA)
TAIL = re.compile(r"\bN[1-9]\d{0,4}[A-HJ-NP-Z]{0,2}\b|\b(?:[A-Z]{1,2}|\d[A-Z]|[A-Z]\d)-[A-Z0-9]{3,5}\b")
# booking codes / record locators: 5-8 uppercase letters and digits with at least one of each
CODE = re.compile(r"\b(?=[A-Z0-9]{5,8}\b)(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,8}\b")
_REFERENCE_WORDS = (
    r"order|invoice|tracking|shipment|parcel|package|ticket|case|ref|reference|confirmation|booking|reservation"
    r"|pnr|record locator|locator|itinerary|flight|bag|baggage|luggage|claim|tag|file|incident|report|complaint"
    r"|account|acct|member|membership|rewards|loyalty|frequent flyer|policy|serial|sku|model|item|receipt"
    r"|transaction|txn|voucher|coupon|gift card|promo code|discount code|gate|seat|room|cust(?:omer)? ?id"
)
REFERENCE = re.compile(
    rf"\b(?:{_REFERENCE_WORDS})(?:[\s\-]+(?:{_REFERENCE_WORDS}))*\s*(?:no\.?|nr\.?|number|num|id|code|#)?\s*(?:is|was|:|=)?\s*#?\s*"
    r"(?P<ref>(?=[A-Za-z\-/]*\d)[A-Za-z0-9][A-Za-z0-9\-/]*(?:[ .]\d{2,})*)",  # a token with a digit
    re.IGNORECASE,
)
DIGIT_RUN = re.compile(r"\d(?:\D?\d){6,}")  # seven digits or more: worth asking libphonenumber
