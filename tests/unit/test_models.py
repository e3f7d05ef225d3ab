"""The real models (packaged encoder + the committed sentiment head), not stand-ins."""

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from touchpoint.models.sentiment import LABELS as LABELS_
from touchpoint.models.touchpoints import OTHER


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


def test_emotions_cover_cx_needs(enricher) -> None:
    thanks, confused = enricher.enrich(
        ["Thank you so much for your help, I really appreciate it!",
         "I'm confused, I don't understand how this setting works. Can someone explain?"]
    )  # fmt: skip
    assert "gratitude" in thanks.emotions
    assert "confusion" in confused.emotions


def test_sentiment_head_reads_v1_and_v2_artifacts(tmp_path, enricher) -> None:
    from touchpoint.models.sentiment import LABELS, SentimentHead

    v1 = tmp_path / "v1.json"
    rng = np.random.default_rng(0)
    v1.write_text(json.dumps({"version": "v1", "labels": list(LABELS), "coef": rng.normal(size=(3, 384)).tolist(),
                              "intercept": [0.0, 0.0, 0.0]}))  # fmt: skip
    head = SentimentHead.load(v1)
    vectors = enricher.encoder.encode(["fine", "awful"])
    assert [r.label for r in head.predict(vectors)] == [r.label for r in head.predict_texts(["fine", "awful"],
                                                                                           enricher.encoder.encode_rich(["fine", "awful"]))]  # fmt: skip
    results = enricher.sentiment.predict_texts(["great", "terrible"], enricher.encoder.encode_rich(["great", "terrible"]))
    assert all(abs(sum(r.probabilities) - 1) < 1e-4 for r in results)


def test_any_hugging_face_classifier_plugs_in(tmp_path, enricher) -> None:
    """A classifier saved by our own fine-tuning code loads through the generic path, labels mapped."""
    import torch

    from touchpoint.models.enricher import EnricherConfig, load_sentiment
    from touchpoint.models.hf_export import LABEL_MAP, finetune_texts
    from touchpoint.models.hf_sentiment import HFSentiment

    texts = ["I love it, works great", "terrible, broke on day one", "it arrived on tuesday", "best service ever",
             "worst support, never again", "the box is blue", "so happy with this", "awful and rude staff"]
    labels = ["positive", "negative", "neutral", "positive", "negative", "neutral", "positive", "negative"]
    model = finetune_texts(texts, labels, tmp_path / "clf", batch_size=8)
    with torch.inference_mode():
        batch = AutoTokenizer.from_pretrained(tmp_path / "clf")(texts, padding=True, return_tensors="pt")
        expected = torch.softmax(model(**batch).logits, dim=-1).numpy()
    loaded = load_sentiment(EnricherConfig(sentiment_model=str(tmp_path / "clf"), sentiment_label_map=LABEL_MAP))
    assert isinstance(loaded, HFSentiment)
    assert np.allclose(loaded.probabilities_texts(texts), expected, atol=1e-4)
    results = loaded.predict_texts(texts)
    assert [r.label for r in results] == [LABELS_[int(i)] for i in expected.argmax(axis=1)]
    with pytest.raises(ValueError, match="TOUCHPOINT_SENTIMENT_LABEL_MAP"):
        HFSentiment(str(tmp_path / "clf"), {"LABEL_0": "negative"})


def test_two_class_label_map() -> None:
    from touchpoint.models.hf_sentiment import label_indices

    assert label_indices({0: "NEG", 1: "POS"}, None).tolist() == [0, 2]
    assert label_indices({0: "1 star", 1: "5 stars"}, {"1 star": "negative", "5 stars": "positive"}).tolist() == [0, 2]


def test_multilingual_corpora_are_read_with_their_column_order(tmp_path) -> None:
    from touchpoint.models import datasets

    folder = tmp_path / "labelled" / datasets.PATTERN_DIR
    folder.mkdir(parents=True)
    (folder / "polarity-fr-amazon.csv").write_text('"Très bien, j\'adore.","1"\n"Nul &amp; cher.","-1"\n', encoding="utf-8")
    rows = datasets.load("pattern_fr", tmp_path)
    assert [(r.text, r.label) for r in rows] == [("Très bien, j'adore.", "positive"), ("Nul & cher.", "negative")]


def test_scores_and_multilabel_scores() -> None:
    from touchpoint.models.evaluate import score
    from touchpoint.models.tagging_eval import multilabel_scores

    s = score(["negative", "positive", "positive"], ["negative", "neutral", "positive"])
    assert s.accuracy == pytest.approx(2 / 3) and set(s.per_class_f1) == {"negative", "positive"}
    assert s.confusion[2] == [0, 1, 1]
    m = multilabel_scores([["joy"], [], ["anger", "joy"]], [["joy"], ["anger"], ["anger"]], ("anger", "joy"))
    assert m["per_label"]["joy"]["recall"] == pytest.approx(0.5) and m["exact"] == pytest.approx(1 / 3)


def test_labelled_set_is_real_and_large_enough() -> None:
    from touchpoint.models.emotion import NAMES
    from touchpoint.models.tagging_eval import load_labelled

    rows = load_labelled()
    assert len(rows) >= 300
    assert {e for r in rows for e in r["emotions"]} == set(NAMES)
    assert {r["part"] for r in rows} == {"dev", "test"}
