"""How each survey and support tool's documented shapes map to raw signals (no broker needed).

Payloads come from the files the integration suites serve
(tests/integration/connectors/payloads, each with a ``doc`` naming its source)
and tests/fixtures/webhooks (sources in its SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from touchpoint.connectors.delighted import response_to_signal
from touchpoint.core.identity import Identity, pseudonymize
from touchpoint.schemas.signal import InvalidSignal

PAYLOADS = Path(__file__).parents[1] / "integration" / "connectors" / "payloads"
SECRET = "id-secret"
IDENTITY = Identity(SECRET)


def page_items(name: str) -> dict[str, dict]:
    pages = json.loads((PAYLOADS / name).read_text())["pages"]
    return {str(item.get("id")): item for page in pages if isinstance(page["body"], list) for item in page["body"]}


def test_delighted_metric_follows_the_survey_type() -> None:
    items = page_items("delighted_survey_responses.json")
    scores = {rid: response_to_signal(items[rid], brand="acme", identity=IDENTITY).score for rid in items if rid != "None"}
    assert {rid: (s.metric, s.value, s.scale_min, s.scale_max) for rid, s in scores.items() if s} == {
        "9017": ("nps", 3, 0, 10), "9016": ("csat", 5, 1, 5), "9015": ("ces", 6, 1, 7), "9014": ("rating", 4, 1, 5),
        "9013": ("nps", 10, 0, 10), "9012": ("nps", 8, 0, 10), "9011": ("nps", 0, 0, 10),
    }  # fmt: skip


def test_delighted_text_identity_and_unix_times() -> None:
    item = page_items("delighted_survey_responses.json")["9017"]
    record = response_to_signal(item, brand="acme", identity=IDENTITY).to_record()
    assert record["text"] == "Two weeks late and nobody answered my emails.\nThe courier was polite but the box was crushed."
    assert record["customer_id"] == pseudonymize("email", "dana.whitfield@example.org", SECRET)
    assert record["occurred_at"].timestamp() == 1794200000
    assert record["attributes"] == {"Delighted Source": "Email", "Purchase Experience": "Mobile App", "survey_type": "nps"}
    dumped = json.dumps(record, default=str)
    assert "Whitfield" not in dumped and "CRM-7781" not in dumped and "5550132" not in dumped


def test_delighted_unknown_survey_type_keeps_its_score_as_an_attribute_only() -> None:
    item = {**page_items("delighted_survey_responses.json")["9016"], "survey_type": "thumbs", "score": 1}
    signal = response_to_signal(item, brand="acme", identity=IDENTITY)
    assert signal.score is None and signal.attributes["delighted_score"] == "1"
    with pytest.raises(InvalidSignal, match="neither text nor score"):
        response_to_signal({**item, "comment": None}, brand="acme", identity=IDENTITY).to_record()


def surveymonkey_pages() -> dict:
    return {page["key"]: page["body"] for page in json.loads((PAYLOADS / "surveymonkey_responses.json").read_text())["pages"]}


def test_surveymonkey_families_decide_scores_and_named_questions_take_a_metric() -> None:
    from touchpoint.connectors.surveymonkey import question_map
    from touchpoint.connectors.surveymonkey import response_to_signal as sm_signal

    pages = surveymonkey_pages()
    questions = question_map(pages["details"])
    first, stars_only = pages[None]["data"][0], pages[None]["data"][2]
    unnamed = sm_signal(stars_only, questions, {}, brand="acme", identity=IDENTITY)
    assert unnamed.score is not None and (unnamed.score.metric, unnamed.score.value, unnamed.score.scale_min) == ("rating", 4, 1)
    named = sm_signal(first, questions, {"csat_questions": ["319352787"]}, brand="acme", identity=IDENTITY)
    assert named.score is not None and (named.score.metric, named.score.value) == ("nps", 2)  # NPS comes first
    assert named.attributes["score.319352787"] == "csat 1 (1-5)"  # the named star rating is CSAT, kept
    with pytest.raises(InvalidSignal, match="not on the ces scale"):
        sm_signal(first, questions, {"ces": "319352786"}, brand="acme", identity=IDENTITY)
    commented = sm_signal(first, questions, {"comment_questions": "319352789"}, brand="acme", identity=IDENTITY)
    assert commented.text == "Laura"  # only because it was named as the comment


def test_the_tools_credentials_are_masked_when_settings_are_printed() -> None:
    from touchpoint.core.settings import Settings

    secrets = {name: f"{name}-s3cret" for name in (
        "surveymonkey_api_secret", "surveymonkey_access_token", "qualtrics_shared_key", "qualtrics_api_token",
        "delighted_api_key", "intercom_client_secret", "intercom_access_token",
    )}  # fmt: skip
    settings = Settings(**secrets, surveymonkey_api_key="sm-client-id")
    shown = settings.describe()
    assert all(shown[name] == "***" for name in secrets)
    assert "s3cret" not in repr(settings) and "s3cret" not in str(shown)
    assert shown["surveymonkey_api_key"] == "sm-client-id"  # an app id, sent in every webhook's Sm-Apikey header
