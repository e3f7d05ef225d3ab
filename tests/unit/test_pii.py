import pytest

from touchpoint.models.pii import PiiRedactor, iban_valid, luhn_valid


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    return PiiRedactor(phone_region="US")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+cx@example.co.uk please", "email"),
        ("jane . doe @ example . com", "email"),
        ("jane(at)example(dot)com", "email"),
        ("call me on (415) 555-2671", "phone"),
        ("call me on 415.555.2671", "phone"),
        ("my uk number +44 20 7946 0958", "phone"),
        ("card 4111 1111 1111 1111 charged twice", "card"),
        ("card 4111-1111-1111-1111 charged twice", "card"),
        ("refund to DE89 3704 0044 0532 0130 00", "iban"),
        ("refund to GB82WEST12345698765432", "iban"),
    ],
)
def test_pii_is_redacted(redactor: PiiRedactor, text: str, kind: str) -> None:
    result = redactor.redact(text)
    assert kind in result.found
    assert f"[{kind.upper()}]" in result.text


@pytest.mark.parametrize(
    "text",
    ["order 1234567890123 is late", "card 4111 1111 1111 1112 failed", "I waited 45 minutes on hold", "version 2.13.0"],
)
def test_non_pii_numbers_are_kept(redactor: PiiRedactor, text: str) -> None:
    assert redactor.redact(text).text == text


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")


def test_handles_only_when_asked() -> None:
    assert PiiRedactor().redact("thanks @delta_support").text == "thanks @delta_support"
    assert PiiRedactor(redact_handles=True).redact("thanks @delta_support").text == "thanks [HANDLE]"


@pytest.mark.parametrize(
    ("text", "kind", "leak"),
    [
        ("mail me: jane . doe @ example . com thanks", "email", "jane"),
        ("JANE.DOE @EXAMPLE.COM", "email", "JANE"),
        ("jane at example dot com", "email", "jane"),
        ("jane(at)mail(dot)example(dot)org", "email", "jane"),
        ("call +1 (415) 555-2671 asap", "phone", "2671"),
        ("call 415-555-2671", "phone", "2671"),
        ("call 415 555 2671", "phone", "2671"),
        ("call 1-800-555-0199", "phone", "0199"),
        ("ring 00 44 20 7946 0958 today", "phone", "7946"),
        ("ring +44 (0)20 7946 0958", "phone", "7946"),
        ("amex 3782 822463 10005 declined", "card", "10005"),
        ("card 4111.1111.1111.1111", "card", "1111"),
        ("card 5500-0000-0000-0004 billed", "card", "0004"),
        ("iban de89 3704 0044 0532 0130 00", "iban", "3704"),
        ("IBAN: FR14 2004 1010 0505 0001 3M02 606", "iban", "2004"),
        ("I live at 123 Main Street, Apt 4B, Springfield", "address", "Main"),
        ("deliver to 742 Evergreen Terrace", "address", "Evergreen"),
        ("send it to 10 Downing St please", "address", "Downing"),
        ("my postcode is SW1A 1AA", "address", "SW1A"),
    ],
)
def test_adversarial_formats_are_redacted(redactor: PiiRedactor, text: str, kind: str, leak: str) -> None:
    result = redactor.redact(text)
    assert kind in result.found, result
    assert leak not in result.text, result


@pytest.mark.parametrize(
    "text",
    [
        "order 4155552671 is late",
        "order #4155552671 never shipped",
        "tracking number 1Z999AA10123456784",
        "invoice no. 2065551234 is wrong",
        "delivered on 2026-11-01 at 14:30",
        "ordered on 11/01/2026, arrived 11.05.2026",
        "paid $1,234.56 and then EUR 300.000",
        "I waited 3 hours and 45 minutes",
        "we ordered 3 Main Course Dishes",
        "rated it 4 out of 5 stars",
    ],
)
def test_references_dates_and_prices_are_not_phones(redactor: PiiRedactor, text: str) -> None:
    assert redactor.redact(text).text == text
