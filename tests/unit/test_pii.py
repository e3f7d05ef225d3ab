import pytest

from models.pii import PiiRedactor, iban_valid, luhn_valid


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
