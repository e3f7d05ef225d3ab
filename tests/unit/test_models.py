"""The real models (packaged encoder + the committed sentiment head), not stand-ins."""

import numpy as np
import pytest

from models.touchpoints import OTHER


def test_encoder_gives_unit_vectors_and_zero_for_empty(enricher) -> None:
    vectors = enricher.encoder.encode(["the parcel never came", "", "great service"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-4)
    assert not vectors[1].any()


def test_sentiment_polarity_on_clear_cases(enricher) -> None:
    texts = [
        "Absolutely love this, the staff were wonderful and it arrived early!",
        "Worst purchase ever. It broke after one day and support ignored me.",
    ]
    positive, negative = enricher.enrich(texts)
    assert positive.sentiment_label == "positive" and positive.sentiment_score > 0.3
    assert negative.sentiment_label == "negative" and negative.sentiment_score < -0.3
    assert -1 <= negative.sentiment_score <= 1


@pytest.mark.parametrize(
    ("text", "touchpoint", "stage"),
    [
        ("My package arrived two weeks late and the box was crushed", "delivery", "delivery_onboarding"),
        ("The app crashes every time I try to log in", "mobile_app", "usage"),
        ("I was charged twice on my card for one order", "payment", "purchase"),
        ("Still waiting for my refund after returning the item", "returns_refunds", "support"),
    ],
)
def test_touchpoints_and_stage(enricher, text: str, touchpoint: str, stage: str) -> None:
    [result] = enricher.enrich([text])
    assert touchpoint in result.touchpoints
    assert result.journey_stage == enricher.taxonomy.stage_of(result.touchpoints[0])


def test_unrelated_text_is_other_not_a_forced_guess(enricher) -> None:
    [result] = enricher.enrich(["Jupiter has at least ninety-five moons."])
    assert result.touchpoints == [OTHER]
    assert result.journey_stage == "unknown"


def test_survey_hint_is_respected(enricher) -> None:
    [result] = enricher.enrich(["ok I guess"], hints=["checkout"])
    assert result.touchpoints[0] == "checkout"
    assert result.journey_stage == "purchase"


def test_score_only_signal_has_no_text_fields(enricher) -> None:
    [result] = enricher.enrich([None])
    assert result.sentiment_label is None and result.text_redacted is None and result.touchpoints == []


def test_pii_is_redacted_before_anything_else(enricher) -> None:
    [result] = enricher.enrich(["Call me at (415) 555-2671, the delivery is late"])
    assert "555" not in result.text_redacted and "phone" in result.pii_found


def test_language_and_emotions(enricher) -> None:
    french, angry = enricher.enrich(
        ["Le colis est arrivé en retard et personne ne répond au téléphone.",
         "I am furious, this is outrageous and unacceptable!"]
    )  # fmt: skip
    assert french.language == "fr"
    assert "anger" in angry.emotions
