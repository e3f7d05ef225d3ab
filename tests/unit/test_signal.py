from dataclasses import replace
from datetime import datetime, timezone

import pytest

from touchpoint.schemas.signal import InvalidSignal, RawSignal, Score, kind_of, make_signal_id

WHEN = datetime(2026, 11, 2, tzinfo=timezone.utc)


def survey(**changes) -> RawSignal:
    base = RawSignal(source="typeform", source_id="r1", channel="survey", brand="acme", occurred_at=WHEN, text="ok")
    return replace(base, **changes)


def test_signal_id_is_deterministic_and_source_scoped() -> None:
    assert make_signal_id("typeform", "r1") == make_signal_id("typeform", "r1")
    assert make_signal_id("typeform", "r1") != make_signal_id("qualtrics", "r1")
    assert survey().signal_id == survey(text="different text").signal_id


def test_kind_follows_channel_ownership() -> None:
    assert [kind_of(c) for c in ("survey", "chat", "social", "review")] == ["direct", "direct", "indirect", "indirect"]
    assert survey().to_record()["kind"] == "direct"


def test_kafka_key_prefers_customer_then_author_then_signal() -> None:
    assert survey(customer_id="c-1", author="@a").kafka_key == b"c-1"
    assert survey(author="@a").kafka_key == b"@a"
    assert survey().kafka_key == survey().signal_id.encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"score": Score("nps", 11, 0, 10)}, "outside its scale"),
        ({"score": Score("csat", 4, 0, 10)}, "scale 1-5"),
        ({"score": Score("ces", 0, 1, 7)}, "outside its scale"),
        ({"text": None, "score": None}, "neither text nor score"),
        ({"text": "   "}, "neither text nor score"),
        ({"channel": "fax"}, "not one of"),
        ({"brand": ""}, "brand is empty"),
        ({"occurred_at": datetime(2026, 11, 2)}, "timezone-aware"),
    ],
)
def test_invalid_signals_name_the_problem(changes: dict, message: str) -> None:
    with pytest.raises(InvalidSignal, match=message):
        survey(**changes).to_record()


@pytest.mark.parametrize("score", [Score("nps", 0, 0, 10), Score("nps", 10, 0, 10), Score("csat", 5, 1, 5), Score("ces", 1, 1, 7)])
def test_scores_at_the_scale_limits_are_valid(score: Score) -> None:
    assert survey(score=score, text=None).to_record()["score"]["value"] == score.value
