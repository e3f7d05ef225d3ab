"""Survey webhook parsers and signature checks on real-shaped payloads (tests/fixtures/webhooks)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from touchpoint.connectors.surveys import (
    Ignored,
    ParseContext,
    SignatureError,
    parse_formbricks,
    parse_generic,
    parse_typeform,
    sign_generic,
    sign_standard,
    sign_typeform,
    verify_generic,
    verify_standard,
    verify_typeform,
)  # fmt: skip
from touchpoint.core.identity import Identity, is_pseudonymous, pseudonymize
from touchpoint.schemas.signal import InvalidSignal

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
SECRET = "id-secret"
CTX = ParseContext(brand="acme", identity=Identity(SECRET))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def no_identifier_leaks(record: dict, *raw: str) -> None:
    dumped = json.dumps(record, default=str).lower()
    for value in raw:
        assert value.lower() not in dumped, f"{value} leaked into the record"


def test_typeform_nps_ces_comment_and_identity() -> None:
    signal = parse_typeform(fixture("typeform_form_response.json"), CTX)
    record = signal.to_record()
    assert record["source"] == "typeform" and record["source_id"] == "a3a12ec67a1365927098a606107fac15"
    assert record["score"] == {"metric": "nps", "value": 3.0, "scale_min": 0, "scale_max": 10}
    assert record["attributes"]["score.effort_q"] == "rating 2 (1-7)"  # unnamed opinion scale: a rating, kept
    assert record["text"].startswith("The courier left the parcel")
    assert record["touchpoint_hint"] == "delivery"
    assert record["customer_id"] == pseudonymize("email", "ann.smith@example.com", SECRET)
    assert signal.kafka_key == record["customer_id"].encode()
    assert record["attributes"]["order_id"] == "A-99812"
    no_identifier_leaks(record, "ann.smith@example.com", "4155550100")


def test_typeform_field_mapping_by_query() -> None:
    payload = fixture("typeform_form_response.json")
    payload["form_response"]["answers"] = payload["form_response"]["answers"][1:]  # no NPS answer
    signal = parse_typeform(payload, ParseContext(brand="acme", identity=Identity(SECRET), query={"ces": "effort_q"}))
    assert signal.score is not None and (signal.score.metric, signal.score.value) == ("ces", 2.0)
    assert (signal.score.scale_min, signal.score.scale_max) == (1, 7)


def official_example() -> dict:
    # Verbatim from developer.typeform.com/webhooks/example-payload (see tests/fixtures/webhooks/SOURCES.md)
    return fixture("typeform_official_example.json")


def test_typeform_official_example_scores_only_score_fields_and_comments_only_long_text() -> None:
    record = parse_typeform(official_example(), CTX).to_record()
    # the opinion scale (defaults: 11 steps from 0) and the 1-5 rating are scores; the free numbers 5 and 4 are not
    assert record["score"] == {"metric": "rating", "value": 2.0, "scale_min": 0, "scale_max": 10}
    assert record["attributes"]["score.readable_ref_rating"] == "rating 3 (1-5)"
    assert not any("number" in key for key in record["attributes"])
    assert record["text"] == "It's cold right now! I live in an older medium-sized city with a university. Geographically, the area is hilly."
    assert "Laura" not in json.dumps(record, default=str)  # a first name is never a comment
    assert record["customer_id"] == pseudonymize("email", "laura@example.com", SECRET)
    no_identifier_leaks(record, "laura@example.com", "abc123456")


def test_typeform_named_fields_and_scales_from_the_url() -> None:
    query = {"csat": "readable_ref_rating", "scales": "readable_ref_opinion_scale:1-5", "comment": "readable_ref_long_text"}
    record = parse_typeform(official_example(), ParseContext("acme", Identity(SECRET), query)).to_record()
    assert record["score"] == {"metric": "csat", "value": 3.0, "scale_min": 1, "scale_max": 5}
    assert record["attributes"]["score.readable_ref_opinion_scale"] == "rating 2 (1-5)"
    named_number = parse_typeform(official_example(), ParseContext("acme", Identity(SECRET), {"ces": "readable_ref_number2"}))
    assert named_number.score is not None and (named_number.score.metric, named_number.score.value) == ("ces", 4.0)


def test_typeform_named_field_on_the_wrong_scale_is_refused() -> None:
    with pytest.raises(InvalidSignal, match="not on the ces scale"):
        parse_typeform(official_example(), ParseContext("acme", Identity(SECRET), {"ces": "readable_ref_opinion_scale"}))


def test_typeform_out_of_scale_nps_is_invalid() -> None:
    payload = fixture("typeform_form_response.json")
    payload["form_response"]["answers"][0]["number"] = 11
    with pytest.raises(InvalidSignal, match="outside its scale"):
        parse_typeform(payload, CTX)


def test_formbricks_finished_response() -> None:
    ctx = ParseContext(brand="acme", identity=Identity(SECRET), query={"csat": "csat", "comment": "whyscore"})
    record = parse_formbricks(fixture("formbricks_response_finished.json"), ctx).to_record()
    assert record["source_id"] == "clz8resp00042"
    assert record["score"] == {"metric": "csat", "value": 4.0, "scale_min": 1, "scale_max": 5}
    assert record["text"] == "Checkout was quick but the promo code did not apply."
    assert record["customer_id"] == pseudonymize("email", "jan@example.de", SECRET)
    assert record["url"] == "https://shop.example.com/checkout/thanks"
    no_identifier_leaks(record, "jan@example.de", "user-1234")


def test_formbricks_list_form_and_unfinished_events() -> None:
    payload = fixture("formbricks_response_finished.json")
    assert parse_formbricks([payload], CTX).source_id == "clz8resp00042"
    with pytest.raises(Ignored):
        parse_formbricks({**payload, "event": "responseUpdated"}, CTX)


def test_generic_shape() -> None:
    record = parse_generic(fixture("generic_ces.json"), CTX).to_record()
    assert record["score"] == {"metric": "ces", "value": 6.0, "scale_min": 1, "scale_max": 7}
    assert record["customer_id"] == pseudonymize("account", "acct-778", SECRET)
    assert record["attributes"] == {"store": "web", "survey": "returns-ces"}
    assert record["touchpoint_hint"] == "returns"
    no_identifier_leaks(record, "should-not-leak", "555-0199", "acct-778")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"id": None}, "id is missing"), ({"nps": 12, "ces": None}, "outside its scale"),
     ({"occurred_at": "yesterday"}, "not ISO 8601"), ({"ces": None, "comment": None}, "neither text nor score")],
)  # fmt: skip
def test_generic_invalid_payloads_say_why(change: dict, message: str) -> None:
    with pytest.raises(InvalidSignal, match=message):
        parse_generic({**fixture("generic_ces.json"), **change}, CTX).to_record()


def test_typeform_signature() -> None:
    body = b'{"event_type": "form_response"}'
    good = {"Typeform-Signature": sign_typeform(body, "tf-secret")}
    verify_typeform(body, good, "tf-secret", time.time(), 300)
    assert good["Typeform-Signature"].startswith("sha256=")
    base64.b64decode(good["Typeform-Signature"][7:], validate=True)  # base64, not hex
    with pytest.raises(SignatureError, match="does not match"):
        verify_typeform(body + b" ", good, "tf-secret", time.time(), 300)
    with pytest.raises(SignatureError, match="missing"):
        verify_typeform(body, {}, "tf-secret", time.time(), 300)


def test_standard_webhooks_signature_and_staleness() -> None:
    secret = "whsec_" + base64.b64encode(b"formbricks-key-bytes").decode()
    body, now = b'{"event": "responseFinished"}', time.time()
    stamp = str(int(now))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp, "webhook-signature": sign_standard("msg_1", stamp, body, secret)}
    verify_standard(body, headers, secret, now, 300)
    verify_standard(body, {**headers, "webhook-signature": "v1,old " + headers["webhook-signature"]}, secret, now, 300)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_standard(body, headers, secret, now + 301, 300)
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard(body, {**headers, "webhook-id": "msg_2"}, secret, now, 300)


def test_generic_signature() -> None:
    body, now = b"{}", time.time()
    headers = {"X-Touchpoint-Timestamp": str(int(now)), "X-Touchpoint-Signature": sign_generic(str(int(now)), body, "g")}
    verify_generic(body, headers, "g", now, 300)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_generic(body, headers, "g", now - 1000, 300)
    with pytest.raises(SignatureError, match="missing"):
        verify_generic(body, {"X-Touchpoint-Signature": headers["X-Touchpoint-Signature"]}, "g", now, 300)


def test_customer_ids_are_pseudonymous() -> None:
    signal = parse_typeform(fixture("typeform_form_response.json"), CTX)
    assert signal.customer_id and is_pseudonymous(signal.customer_id)


def test_webhook_secrets_are_masked_when_settings_are_printed() -> None:
    from touchpoint.core.settings import Settings

    settings = Settings(typeform_webhook_secret="tf-s3cret", generic_webhook_secret="g-s3cret")
    shown = settings.describe()
    assert shown["typeform_webhook_secret"] == "***" and shown["generic_webhook_secret"] == "***"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(shown)
