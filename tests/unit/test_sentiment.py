"""Issue 13's sentiment: the fine-tuned encoder, the language gate, per-brand priors, the slice rules.

Everything runs the real packaged encoder and the committed artifact. Texts
written for these tests say so; the 400 demo texts are the bundled sample
(cli/samples/SOURCES.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from touchpoint.models.adaptation import adjust, estimate_prior, fit_calibration, load_priors, save_prior
from touchpoint.models.sentiment import softmax
from touchpoint.samples import sample_path

# written for these tests: one complaint, one compliment, in three languages
COMPLAINT_EN = "The delivery came two weeks late and nobody at support answered my emails."
COMPLAINT_FR = "La livraison est arrivée avec deux semaines de retard et le service client ne répond jamais."
COMPLAINT_DE = "Die Lieferung kam zwei Wochen zu spät und der Kundendienst antwortet nie auf meine E-Mails."


def demo_texts() -> list[str]:
    return [json.loads(line)["text"] for line in sample_path("demo_signals.jsonl").read_text().splitlines()]


def test_a_language_the_model_cannot_read_is_unknown_with_the_reason(enricher) -> None:
    english, french, german = enricher.enrich([COMPLAINT_EN, COMPLAINT_FR, COMPLAINT_DE])
    assert english.sentiment_label == "negative" and english.sentiment_reason is None
    for result, code in ((french, "fr"), (german, "de")):
        assert result.language == code
        assert result.sentiment_label == "unknown" and result.sentiment_score is None
        assert result.sentiment_reason.startswith(f"language {code}:") and "0.80" in result.sentiment_reason
        assert result.emotions == []  # the emotion gate needs a sentiment the model does not have
        assert result.touchpoints  # touchpoints still come from the same encoder pass


def test_the_gate_follows_the_measured_accuracies(enricher) -> None:
    head = enricher.sentiment
    assert head.languages, "the artifact records the accuracy measured per language"
    for code, accuracy in head.languages.items():
        assert (head.unscored_reason(code) is None) == (accuracy >= 0.8), code
    assert head.unscored_reason("und") is None  # too short to tell: scored
    assert "no packaged data" in head.unscored_reason("es")


def test_the_encoder_runs_the_fine_tuned_layers_once_for_every_head(enricher) -> None:
    from touchpoint.models.encoder import SentenceEncoder

    assert enricher.encoder.tuned_id == enricher.sentiment.tuned.sha256
    assert "+tuned-" in enricher.version
    frozen = SentenceEncoder()
    texts = ["My parcel is still not here after three weeks", "Great food and friendly staff"]
    tuned, plain = enricher.encoder.encode(texts), frozen.encode(texts)
    cosine = (tuned * plain).sum(axis=1)
    assert np.all(cosine > 0.9) and np.all(cosine < 0.99999)  # changed, but where the other heads expect it


def test_tampered_tuned_layers_are_refused_with_the_fix(tmp_path: Path, enricher) -> None:
    from touchpoint.models.encoder import SentenceEncoder, TunedWeightsError
    from touchpoint.models.sentiment import SentimentHead, default_head_path

    source = default_head_path().parent
    for name in ("sentiment-head.json", "sentiment-head.npz", "sentiment-encoder.npz"):
        shutil.copy(source / name, tmp_path / name)
    data = bytearray((tmp_path / "sentiment-encoder.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "sentiment-encoder.npz").write_bytes(bytes(data))
    head = SentimentHead.load(tmp_path / "sentiment-head.json")
    with pytest.raises(TunedWeightsError, match="make train-sentiment"):
        SentenceEncoder(tuned=head.tuned)


def test_fine_tuning_is_deterministic_and_the_stack_matches_the_encoder_pass(tmp_path: Path) -> None:
    import hashlib

    from touchpoint.models import finetune
    from touchpoint.models.encoder import SentenceEncoder, TunedLayers
    from touchpoint.models.finetune import Examples, FinetuneConfig

    # written for this test: a few labelled sentences
    texts = ["I love this, works perfectly", "Broke after a day, total waste", "It is a phone", "Best purchase ever",
             "Refund still not here after a month", "The box is blue", "Terrible service and rude staff", "Fine, I guess"]  # fmt: skip
    data = Examples(["t"] * len(texts), texts, np.array([2, 0, 1, 2, 0, 1, 0, 1]))
    # one tuned layer: the head reads its input (layer 5, frozen) and its output (layer 6)
    config = FinetuneConfig(name="tiny", tuned_layers=1, epochs=1, batch_size=4,
                            features=("layer:5", "layer:6", "last_max", "vader"))  # fmt: skip
    encoder = SentenceEncoder()
    frozen = finetune.prepare(encoder, config, texts, None)
    first = finetune.train(config, encoder, data, frozen)
    second = finetune.train(config, encoder, data, finetune.prepare(encoder, config, texts, tmp_path))
    again = finetune.train(config, encoder, data, finetune.prepare(encoder, config, texts, tmp_path))  # from the cache
    blobs = [finetune.tuned_layers_bytes(t.model) for t in (first, second, again)]
    assert blobs[0] == blobs[1] == blobs[2]
    file = tmp_path / "layers.npz"
    file.write_bytes(blobs[0])
    tuned = SentenceEncoder(tuned=TunedLayers(file, hashlib.sha256(blobs[0]).hexdigest()))
    _, stack_vectors = finetune.predict(first.model, frozen, texts)
    assert np.all((tuned.encode(texts) * stack_vectors).sum(axis=1) > 0.999)
    with pytest.raises(ValueError, match="layer:4"):  # not computed when only the top layer is tuned
        finetune.TunedTop(encoder, 1, ("layer:4", "layer:6"))


def gaussian_clusters(
    rng: np.random.Generator, shares: tuple[float, float, float], n: int, separation: float
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a known generative model: labels drawn with ``shares``, one unit Gaussian per class, its mean
    ``separation`` along that class's axis."""
    y = rng.choice(3, size=n, p=shares)
    return rng.normal(size=(n, 3)) + separation * np.eye(3)[y], y


def test_em_recovers_a_shifted_label_mix_from_calibrated_probabilities() -> None:
    """A known generative model: Gaussian class clusters, a classifier calibrated on one mix, EM on another."""
    rng = np.random.default_rng(13)
    x_source, y_source = gaussian_clusters(rng, (0.2, 0.3, 0.5), 6000, separation=2.0)
    temperature, bias = fit_calibration(x_source, y_source)
    source_prior = np.bincount(y_source, minlength=3) / len(y_source)
    calibrated = softmax((x_source / temperature + bias).astype(np.float32))
    assert np.allclose(calibrated.mean(axis=0), source_prior, atol=0.01)
    x_target, y_target = gaussian_clusters(rng, (0.6, 0.25, 0.15), 4000, separation=2.0)
    target = softmax((x_target / temperature + bias).astype(np.float32))
    estimate = estimate_prior(target, source_prior)
    assert estimate.converged and np.allclose(estimate.prior, (0.6, 0.25, 0.15), atol=0.03)
    adapted = adjust(target, source_prior, estimate.prior)
    assert (adapted.argmax(1) == y_target).mean() > (target.argmax(1) == y_target).mean()


def test_plug_in_macro_f1_equals_the_real_one_when_posteriors_are_certain() -> None:
    from touchpoint.models.adaptation import expected_macro_f1
    from touchpoint.models.train_head import macro_f1

    rng = np.random.default_rng(5)
    gold, predicted = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    assert expected_macro_f1(np.eye(3)[gold], predicted) == pytest.approx(macro_f1(gold, predicted))
    assert expected_macro_f1(np.eye(3)[gold], gold) == pytest.approx(1.0)
    assert expected_macro_f1(np.eye(3)[gold], (gold + 1) % 3) == 0.0  # negative control: every label wrong


def test_the_plug_in_bias_wins_back_the_macro_f1_a_shifted_prior_costs() -> None:
    """Gaussian class clusters, calibrated on a positive-heavy mix, read on a complaint-heavy one: the prior
    alone moves minority texts to the majority class; the plug-in bias, chosen without labels, recovers."""
    from touchpoint.models.adaptation import macro_f1_decision_bias
    from touchpoint.models.train_head import macro_f1

    rng = np.random.default_rng(21)
    x_source, y_source = gaussian_clusters(rng, (0.3, 0.2, 0.5), 6000, separation=1.2)
    temperature, bias = fit_calibration(x_source, y_source)
    source_prior = np.bincount(y_source, minlength=3) / len(y_source)
    x_target, y_target = gaussian_clusters(rng, (0.75, 0.15, 0.10), 4000, separation=1.2)
    target = softmax((x_target / temperature + bias).astype(np.float32))
    shifted = adjust(target, source_prior, estimate_prior(target, source_prior).prior)
    prior_only = macro_f1(y_target, shifted.argmax(1))
    chosen = np.array(macro_f1_decision_bias(shifted))
    with_bias = macro_f1(y_target, (np.log(shifted) + chosen).argmax(1))
    assert chosen[0] == 0.0 and chosen[1] > 0 and chosen[2] > 0  # the minority classes are favoured
    assert with_bias > prior_only + 0.01


def test_a_brand_prior_shifts_that_brand_only_and_a_stale_one_is_ignored(tmp_path: Path, enricher) -> None:
    from touchpoint.models.adaptation import Shift
    from touchpoint.models.enricher import Enricher, EnricherConfig

    priors = tmp_path / "priors.json"
    complaints = Shift((0.7, 0.2, 0.1))
    save_prior(priors, "acme", complaints, 500, enricher.prior_model, "test")
    save_prior(priors, "globex", complaints, 500, "all-MiniLM-L6-v2/an-older-model", "test")  # negative control
    assert set(load_priors(priors)) == {"acme", "globex"}
    shifted = Enricher(EnricherConfig(sentiment_priors_path=str(priors)))
    assert set(shifted.priors) == {"acme"}
    text = "It arrived on Tuesday."  # written for this test: a flat statement
    acme, globex, no_brand = shifted.enrich([text] * 3, brands=["acme", "globex", None])
    [plain] = enricher.enrich([text])
    assert globex.sentiment_score == no_brand.sentiment_score == plain.sentiment_score
    assert acme.sentiment_score < plain.sentiment_score
    probs = np.array(enricher.sentiment_probabilities([text]))
    expected = adjust(probs, enricher.sentiment.source_prior, complaints.prior)[0]
    assert acme.sentiment_score == pytest.approx(float(expected[2] - expected[0]), abs=1e-3)


def test_train_priors_from_a_file_writes_the_brand_prior(tmp_path: Path, monkeypatch, capsys) -> None:
    from touchpoint.cli import main

    monkeypatch.setenv("TOUCHPOINT_DATA_DIR", str(tmp_path))
    texts = tmp_path / "acme.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in demo_texts()))
    assert main(["train", "priors", "--brand", "acme", "--file", str(texts)]) == 0
    saved = load_priors(tmp_path / "sentiment-priors.json")["acme"]
    assert saved.texts >= 200 and sum(saved.prior) == pytest.approx(1.0) and saved.model_version.count("/") == 1
    assert saved.decision_bias is not None and saved.decision_bias[0] == 0.0
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"text": t}) + "\n" for t in demo_texts()[:20]))
    assert main(["train", "priors", "--brand", "tiny", "--file", str(few)]) == 1
    assert "at least 200" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "label", "groups"),
    [  # written for this test
        ("We waited two hours at the gate and nobody came.", "negative", ("complaint_no_negative_word",)),
        ("Great, my bag went to Denver without me. Thanks a lot.", "negative", ("positive_words_negative_meaning",)),
        ("Could you please check my booking?", "neutral", ("request_or_question",)),
        ("Sorry for the wait, your refund is on its way.", "neutral", ("negative_words_not_negative",)),
        ("Killer deal, I bought two.", "positive", ("negative_words_not_negative",)),
        ("Lovely staff and a smooth flight.", "positive", ()),
    ],
)
def test_slice_rules_select_by_gold_label_and_lexicon_only(text: str, label: str, groups: tuple[str, ...]) -> None:
    from touchpoint.models.cs_slice import groups_of

    assert groups_of(text, label) == groups


def test_offline_enrich_gives_the_reason_and_applies_the_brand_prior(settings, enricher) -> None:
    import io

    from touchpoint.models.adaptation import Shift
    from touchpoint.pipeline.enrichment import sentiment_priors_path
    from touchpoint.pipeline.offline import enrich_jsonl

    save_prior(sentiment_priors_path(settings), "acme", Shift((0.7, 0.2, 0.1)), 500,
               enricher.prior_model, "test")  # fmt: skip
    lines = [{"text": COMPLAINT_FR, "brand": "acme"}, {"text": "It arrived on Tuesday.", "brand": "acme"},
             {"text": "It arrived on Tuesday.", "brand": "globex"}]  # fmt: skip
    out = io.StringIO()
    assert enrich_jsonl(settings, io.StringIO("".join(json.dumps(o) + "\n" for o in lines)), out) == 3
    french, acme, globex = [json.loads(line)["sentiment"] for line in out.getvalue().splitlines()]
    assert french["label"] == "unknown" and french["score"] is None and french["reason"].startswith("language fr:")
    assert "reason" not in acme and acme["score"] < globex["score"]
