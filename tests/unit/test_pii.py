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


# Look-alikes from customer-service tweets to travel brands (the failure causes listed in issue 13,
# re-written by hand: handles, hashtags, flight numbers, aircraft registrations, booking codes, bag claims).
@pytest.mark.parametrize(
    "text",
    [
        "Thanks @JetBlue. Next up is Boston",
        "Thanks @united. My flight was great",
        "@AmericanAir @Delta what a day #neveragain #travel",
        "flight UA647 was cancelled",
        "rebooked on UA 1549 and then BA0283",
        "aircraft N12345 sat at the gate, then N907AN",
        "G-EUPT and D-AIMA both grounded, also C-FTJO",
        "my booking reference is Q7XK2P",
        "bag claim number 0123456789 still missing",
        "baggage file reference DUBFR12345",
        "tracking number 1Z999AA10123456784",
        "order 4155552671 is late",
        "look at www.example.com/help?id=4155552671",
        "look at example.com for the rules",
        "During 1986 prices rose",
        "about 15 square feet of sidewalk",
        "Bus Driver Charged With Speeding",
        "paid 49.99 @ nokiausa.com",
    ],
)
def test_look_alikes_are_kept_verbatim(text: str) -> None:
    redactor = PiiRedactor("US", phone_regions=["GB", "FR", "DE"])
    assert redactor.redact(text).text == text


def test_a_placeholder_covers_only_its_finding() -> None:
    result = PiiRedactor().redact("Thanks @JetBlue. Mail jane.doe@example.com today or call 415-555-2671 now")
    assert result.text == "Thanks @JetBlue. Mail [EMAIL] today or call [PHONE] now"


# National formats (numbers from each country's published numbering plan, valid for libphonenumber).
@pytest.mark.parametrize(
    ("text", "region", "leak"),
    [
        ("ring me on 07911 123456 please", "GB", "123456"),
        ("appelez-moi au 06 12 34 56 78 svp", "FR", "56 78"),
        ("Rückruf unter 030 12345678 bitte", "DE", "12345678"),
        ("llamadme al 612 34 56 78", "ES", "56 78"),
        ("my mobile is 0412 345 678", "AU", "345 678"),
    ],
)
def test_national_phone_formats_need_their_region(text: str, region: str, leak: str) -> None:
    assert leak in PiiRedactor("US").redact(text).text  # negative control: not a US number
    result = PiiRedactor("US", phone_regions=[region]).redact(text)
    assert "phone" in result.found and leak not in result.text


@pytest.mark.parametrize(
    ("text", "kind", "leak"),
    [
        ("send it to Hauptstraße 5, 10115 Berlin today", "address", "10115"),
        ("j'habite au 12 rue de la Paix, 75002 Paris", "address", "Paix"),
        ("Calle Mayor 10, 28013 Madrid", "address", "Mayor"),
        ("bel me, ik woon Keizersgracht 123", "address", "123"),
        ("My name is Laura Bennett", "name", "Bennett"),
        ("the agent Marcus sorted it", "name", "Marcus"),
        ("Regards,\nThomas Müller", "name", "Müller"),
        ("contact mark dot evans at yahoo dot com", "email", "evans"),
    ],
)
def test_addresses_beyond_us_uk_and_cued_names(text: str, kind: str, leak: str) -> None:
    result = PiiRedactor().redact(text)
    assert kind in result.found and leak not in result.text, result


def test_iban_needs_the_country_length_and_cards_an_issuer() -> None:
    redactor = PiiRedactor()
    assert redactor.redact("UA647 from ORD to SFO 1234 5678 9012 3456 7890 1").found == ()
    assert redactor.redact("ref 1234 5678 9012 3452").found == ()  # Luhn-valid, but no issuer starts with 1
    assert redactor.redact("card 4111 1111 1111 1111").found == ("card",)
