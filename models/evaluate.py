"""`touchpoint eval`: measure every model on held-out labelled text and write models/MODEL_CARD.md.

Every number in the card comes from one run of this module:
* sentiment on the *test* split of each labelled set (never trained on), for
  the default model, the frozen-encoder head it replaced (``artifacts/baseline``)
  and the VADER lexicon, all in the same run;
* the same three on the customer-service slice (models/cs_slice.py);
* label-shift adaptation (EM prior re-estimation) on test texts resampled to
  other label mixes (models/shift_eval.py);
* sentiment on non-English polarity corpora, and which languages are scored;
* language identification on the multilingual corpora;
* emotion and touchpoint tagging on the held-out part of the project's own
  labelled set (models/labels/cx_labelled.jsonl), with both models' encoder pass;
* the ONNX int8 encoder against torch on every held-out set above
  (models/quantised_eval.py);
* the approach comparison that ``touchpoint train sentiment --compare`` made on validation.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from touchpoint.models import datasets
from touchpoint.models.cache import encode_cached
from touchpoint.models.enricher import Enricher, EnricherConfig
from touchpoint.models.language import UNKNOWN, detect_language
from touchpoint.models.sentiment import LABELS, baseline_head_path, default_head_path, vader_label, vader_scores

SENTIMENT_EVAL_SETS = (
    "vader_tweets", "vader_amazon", "uci_yelp", "uci_amazon", "vader_movies", "uci_imdb", "vader_nyt",
)  # fmt: skip
LANGUAGE_SAMPLE = 2000


def models_dir() -> Path:
    return Path(str(resources.files("touchpoint.models")))


@dataclass
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]  # rows gold, columns predicted, LABELS order


def score(gold: Sequence[str], pred: Sequence[str]) -> Scores:
    present = [label for label in LABELS if label in set(gold)]
    per_class = f1_score(gold, pred, labels=present, average=None, zero_division=0)
    return Scores(
        n=len(gold),
        accuracy=float(accuracy_score(gold, pred)),
        macro_f1=float(np.mean(per_class)),
        per_class_f1={label: float(v) for label, v in zip(present, per_class)},
        confusion=confusion_matrix(gold, pred, labels=list(LABELS)).tolist(),
    )


@dataclass
class Report:
    sentiment: dict[str, tuple[Scores, Scores, Scores]] = field(default_factory=dict)  # set -> (model, head v2, VADER)
    slice: dict[str, tuple[Scores, Scores, Scores]] = field(default_factory=dict)  # "all" and each group
    slice_sources: dict[str, int] = field(default_factory=dict)
    shift: list[dict] = field(default_factory=list)
    foreign: dict[str, tuple[int, float, float, float]] = field(default_factory=dict)  # set -> (n, model, head, VADER)
    gate: dict[str, str | None] = field(default_factory=dict)  # language -> None (scored) or the unscored reason
    english_unscored: dict[str, tuple[int, int]] = field(default_factory=dict)  # set -> (unscored, n)
    language: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # set -> (n, accuracy, und rate)
    language_confusions: dict[str, dict[str, int]] = field(default_factory=dict)
    tagging: dict[str, object] = field(default_factory=dict)
    tagging_baseline: dict[str, object] = field(default_factory=dict)
    packs: list[dict[str, object]] = field(default_factory=list)  # per industry taxonomy pack (models/pack_eval.py)
    pii: dict[str, object] = field(default_factory=dict)  # redaction on the synthetic messages (models/pii_eval.py)
    quantised: dict[str, object] = field(default_factory=dict)  # ONNX int8 vs torch (models/quantised_eval.py)
    errors: list[tuple[str, str, str, float]] = field(default_factory=list)
    model_version: str = ""
    baseline_version: str = ""
    artifact: dict = field(default_factory=dict)
    seconds: float = 0.0


def labels_of(enricher: Enricher, texts: Sequence[str], cache_dir: Path | None) -> list:  # type: ignore[type-arg]
    """The sentiment results of ``enricher``'s own encoder pass and head (no brand prior, no language gate)."""
    return enricher.sentiment.predict_texts(texts, encode_cached(enricher.encoder, texts, cache_dir))


def evaluate_sentiment(model: Enricher, baseline: Enricher, data_dir: Path, cache_dir: Path | None, report: Report,
                       progress: Callable[[str], None]) -> None:  # fmt: skip
    for name in SENTIMENT_EVAL_SETS:
        progress(f"sentiment: {name}")
        rows = datasets.load(name, data_dir, split="test")
        texts, gold = [r.text for r in rows], [r.label for r in rows]
        results = labels_of(model, texts, cache_dir)
        head = [r.label for r in labels_of(baseline, texts, cache_dir)]
        vader = [vader_label(c) for c in vader_scores(texts)[:, 3]]
        report.sentiment[name] = (score(gold, [r.label for r in results]), score(gold, head), score(gold, vader))
        if name == "vader_tweets":
            wrong = [(t, g, r.label, r.score) for t, g, r in zip(texts, gold, results) if g != r.label]
            wrong.sort(key=lambda w: -abs(w[3]))
            report.errors = wrong[:8]


def evaluate_slice(model: Enricher, baseline: Enricher, data_dir: Path, cache_dir: Path | None, report: Report) -> None:
    from touchpoint.models.cs_slice import GROUPS, build_slice

    rows = build_slice(data_dir)
    texts, gold = [r.text for r in rows], [r.label for r in rows]
    predictions = (
        [r.label for r in labels_of(model, texts, cache_dir)],
        [r.label for r in labels_of(baseline, texts, cache_dir)],
        [vader_label(c) for c in vader_scores(texts)[:, 3]],
    )
    report.slice["all"] = tuple(score(gold, pred) for pred in predictions)  # type: ignore[assignment]
    for group in GROUPS:
        idx = [i for i, r in enumerate(rows) if group in r.groups]
        scores = tuple(score([gold[i] for i in idx], [pred[i] for i in idx]) for pred in predictions)
        report.slice[group] = scores  # type: ignore[assignment]
    report.slice_sources = dict(Counter(r.dataset for r in rows))


def evaluate_foreign(model: Enricher, baseline: Enricher, data_dir: Path, cache_dir: Path | None, report: Report,
                     progress: Callable[[str], None]) -> None:  # fmt: skip
    """Binary polarity: accuracy of sign(P(pos) - P(neg)) for both models and of VADER's compound sign."""
    for language, name in datasets.POLARITY_SETS.items():
        progress(f"sentiment by language: {name}")
        rows = datasets.sample(datasets.load(name, data_dir), datasets.POLARITY_SAMPLE)
        texts, gold = [r.text for r in rows], np.array([r.label == "positive" for r in rows])
        accuracy = [float(np.mean(np.array([r.score > 0 for r in labels_of(e, texts, cache_dir)]) == gold))
                    for e in (model, baseline)]  # fmt: skip
        vader_acc = float(np.mean((vader_scores(texts)[:, 3] > 0) == gold))
        report.foreign[name] = (len(rows), accuracy[0], accuracy[1], vader_acc)
        report.gate[language] = model.sentiment.unscored_reason(language)
    for name in ("vader_tweets", "vader_amazon", "uci_amazon", "uci_yelp"):
        rows = datasets.load(name, data_dir, split="test")
        found = [detect_language(r.text) for r in rows]
        unscored = sum(model.sentiment.unscored_reason(code) is not None for code in found)
        report.english_unscored[name] = (unscored, len(rows))


def evaluate_language(data_dir: Path, report: Report, progress: Callable[[str], None]) -> None:
    for name in datasets.LANGUAGE_OF:
        progress(f"language: {name}")
        rows = datasets.sample(datasets.load(name, data_dir), LANGUAGE_SAMPLE)
        expected = datasets.LANGUAGE_OF[name]
        found = [detect_language(r.text) for r in rows]
        report.language[name] = (len(rows), float(np.mean([f == expected for f in found])),
                                 float(np.mean([f == UNKNOWN for f in found])))  # fmt: skip
        report.language_confusions[name] = dict(Counter(f for f in found if f != expected).most_common(4))
    rows = datasets.load("vader_tweets", data_dir, split="test")
    found = [detect_language(r.text) for r in rows]
    report.language["vader_tweets (test)"] = (len(rows), float(np.mean([f == "en" for f in found])),
                                              float(np.mean([f == UNKNOWN for f in found])))  # fmt: skip
    report.language_confusions["vader_tweets (test)"] = dict(Counter(f for f in found if f != "en").most_common(4))


def run(data_dir: Path, cache_dir: Path | None = None, config: EnricherConfig | None = None,
        progress: Callable[[str], None] = lambda _: None, quantised: bool = True) -> Report:  # fmt: skip
    from touchpoint.models.shift_eval import evaluate_label_shift
    from touchpoint.models.pack_eval import evaluate_packs
    from touchpoint.models.pii_eval import evaluate_pii
    from touchpoint.models.quantised_eval import evaluate_quantised
    from touchpoint.models.tagging_eval import evaluate_tagging

    start = time.perf_counter()
    progress("loading models")
    # the reference tables use the exact (torch) encoder; the quantised one is scored against it below
    config = replace(config or EnricherConfig(), encoder_backend="torch")
    model = Enricher(config)
    baseline = Enricher(replace(config, sentiment_head_path=str(baseline_head_path()), sentiment_model=None))
    artifact_file = Path(config.sentiment_head_path or default_head_path())
    artifact = json.loads(artifact_file.read_text()) if not config.sentiment_model and artifact_file.is_file() else {}
    report = Report(model_version=model.version, baseline_version=baseline.version, artifact=artifact)
    evaluate_sentiment(model, baseline, data_dir, cache_dir, report, progress)
    progress("customer-service slice")
    evaluate_slice(model, baseline, data_dir, cache_dir, report)
    progress("label shift")
    report.shift = evaluate_label_shift(model, data_dir, cache_dir)
    evaluate_foreign(model, baseline, data_dir, cache_dir, report, progress)
    evaluate_language(data_dir, report, progress)
    progress("emotion and touchpoints")
    report.tagging = evaluate_tagging(model, data_dir, cache_dir)
    report.tagging_baseline = evaluate_tagging(baseline, data_dir, cache_dir)
    progress("taxonomy packs")
    report.packs = evaluate_packs(model)
    progress("redaction")
    report.pii = evaluate_pii("test")
    if quantised and not config.sentiment_model:
        report.quantised = evaluate_quantised(report, config, data_dir, cache_dir, progress)
    report.seconds = time.perf_counter() - start
    return report


def write_card(report: Report, out: Path | None = None) -> Path:
    from touchpoint.models.card import render

    out = out or models_dir() / "MODEL_CARD.md"
    selection_file = models_dir() / "artifacts" / "sentiment-selection.json"
    selection = json.loads(selection_file.read_text()) if selection_file.is_file() else None
    training_file = models_dir() / "artifacts" / "sentiment-training.json"
    training = json.loads(training_file.read_text()) if training_file.is_file() else None
    out.write_text(render(report, selection, training, platform.python_version()))
    return out
