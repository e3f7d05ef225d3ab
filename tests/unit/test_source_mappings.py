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
