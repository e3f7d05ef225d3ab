"""The frozen-encoder sentiment head (v2, the default before issue 13), kept as the baseline.

`touchpoint train sentiment --frozen-head` rebuilds it into models/artifacts/baseline/;
the model card and bench/enrich.py compare the fine-tuned default (models/train.py)
against it in the same run. Its helpers (data loading, macro-F1, decision bias)
serve the fine-tuned trainer too.

Deterministic: fixed data order, the *train* split only (models/datasets.py),
seeded solvers. Probabilities are temperature-scaled on validation, so the
score P(pos) - P(neg) is not saturated by an over-confident head. A validation split is carved out of train by a second hash
(:func:`touchpoint.models.datasets.is_validation`); every candidate in :data:`CANDIDATES` is
fitted on train-minus-validation and scored there, the best (mean macro-F1 over
:data:`SELECT_ON`) is refitted on the whole train split and written to
``models/artifacts/baseline/sentiment-head-v2.json``. The test split is never looked at here.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.neural_network import MLPClassifier

from touchpoint.models import datasets
from touchpoint.models.cache import encode_cached
from touchpoint.models.encoder import ENCODER_NAME, Encoded, SentenceEncoder
from touchpoint.models.sentiment import LABELS, SentimentHead, baseline_head_path, feature_matrix

TRAIN_SETS = ("vader_tweets", "vader_amazon", "vader_movies", "uci_amazon", "uci_yelp")
SELECT_ON = ("vader_tweets", "vader_amazon", "uci_yelp", "uci_amazon")  # validation sets, equal weight
HEAD_VERSION = "sentiment-head-v2"
SEED = 13
LAYERS = ("sentence", "layer:4", "layer:5")


@dataclass(frozen=True)
class Candidate:
    """One approach: feature blocks, head kind, regularisation, data mixing, decision bias."""

    name: str
    features: tuple[str, ...] = ("sentence",)
    kind: str = "logreg"  # logreg | mlp
    C: float = 2.0
    hidden: int = 0
    alpha: float = 1e-3
    balanced: bool = True
    set_weights: tuple[tuple[str, float], ...] = ()
    tune_bias: bool = False


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("v1: logreg, sentence vector, C=2"),
    Candidate("logreg, sentence, C=0.5", C=0.5),
    Candidate("logreg, sentence + VADER", features=("sentence", "vader"), C=0.5),
    Candidate("logreg, sentence + layers 4,5", features=LAYERS, C=0.1),
    Candidate("logreg, sentence + layers 4,5 + VADER", features=(*LAYERS, "vader"), C=0.1),
    Candidate("  + tweets x2, movies x0.5", features=(*LAYERS, "vader"), C=0.1,
              set_weights=(("vader_tweets", 2.0), ("vader_movies", 0.5))),
    Candidate("  + tuned decision bias", features=(*LAYERS, "vader"), C=0.1,
              set_weights=(("vader_tweets", 2.0), ("vader_movies", 0.5)), tune_bias=True),
    Candidate("logreg, no class weighting", features=(*LAYERS, "vader"), C=0.1, balanced=False),
    Candidate("MLP 256, sentence + layers 4,5 + VADER", features=(*LAYERS, "vader"), kind="mlp", hidden=256,
              alpha=1e-2),
    Candidate("MLP 256 + tweets x2, movies x0.5 + bias", features=(*LAYERS, "vader"), kind="mlp", hidden=256,
              alpha=1e-2, set_weights=(("vader_tweets", 2.0), ("vader_movies", 0.5)), tune_bias=True),
    Candidate("MLP 256 + tweets x3, movies x0.3 + bias", features=(*LAYERS, "vader"), kind="mlp", hidden=256,
              alpha=1e-2, set_weights=(("vader_tweets", 3.0), ("vader_movies", 0.3)), tune_bias=True),
    Candidate("MLP 256, layers 2-5 + max-pool + VADER, tweets x2 + bias",
              features=(*LAYERS, "layer:2", "layer:3", "last_max", "vader"), kind="mlp", hidden=256, alpha=1e-2,
              set_weights=(("vader_tweets", 2.0), ("vader_movies", 0.5)), tune_bias=True),
    Candidate("MLP 128 + tweets x2, movies x0.5 + bias", features=(*LAYERS, "vader"), kind="mlp", hidden=128,
              alpha=1e-2, set_weights=(("vader_tweets", 2.0), ("vader_movies", 0.5)), tune_bias=True),
)  # fmt: skip


@dataclass
class TrainReport:
    path: Path
    examples: int
    per_label: dict[str, int]
    per_set: dict[str, int]
    chosen: str = ""
    comparison: list[dict] = field(default_factory=list)


@dataclass
class _Data:
    sets: list[str]
    texts: list[str]
    y: np.ndarray
    encoded: Encoded

    def subset(self, mask: np.ndarray) -> "_Data":
        idx = np.flatnonzero(mask)
        enc = Encoded(self.encoded.sentence[idx], self.encoded.layer_means[idx], self.encoded.last_max[idx])
        return _Data([self.sets[i] for i in idx], [self.texts[i] for i in idx], self.y[idx], enc)


def seed_everything(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def load_split(
    data_dir: Path, sets: Sequence[str], split: str, encoder: SentenceEncoder, cache_dir: Path | None
) -> _Data:
    """Rows of ``split`` for every set, encoded (cached per set and split)."""
    names, texts, labels, parts = [], [], [], []
    for name in sets:
        rows = datasets.load(name, data_dir, split=split)
        parts.append(encode_cached(encoder, [r.text for r in rows], cache_dir))
        names += [name] * len(rows)
        texts += [r.text for r in rows]
        labels += [LABELS.index(r.label) for r in rows]
    encoded = Encoded(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("sentence", "layer_means", "last_max")))
    return _Data(names, texts, np.array(labels), encoded)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes the gold labels use (binary sets: negative and positive)."""
    present = sorted(set(int(v) for v in y_true))
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def _fit(candidate: Candidate, x: np.ndarray, data: _Data) -> dict:
    """Fit one candidate; returns the artifact fields (standardisation + weights)."""
    seed_everything()
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    weights = np.ones(len(data.y))
    mixing = dict(candidate.set_weights)
    weights *= np.array([mixing.get(s, 1.0) for s in data.sets])
    if candidate.balanced:
        counts = np.bincount(data.y, weights=weights, minlength=3)
        weights *= (weights.sum() / (3 * counts))[data.y]
    fields: dict = {"mean": mean, "scale": scale}
    if candidate.kind == "logreg":
        model = LogisticRegression(C=candidate.C, max_iter=3000)
        model.fit(z, data.y, sample_weight=weights)
        fields.update(coef=model.coef_, intercept=model.intercept_)
    else:
        # MLPClassifier has no sample weights: repeat rows by rounded weight instead (deterministic).
        reps = np.maximum(1, np.rint(weights / weights.min() if not candidate.balanced else weights * 2)).astype(int)
        idx = np.repeat(np.arange(len(z)), reps)
        model = MLPClassifier(
            hidden_layer_sizes=(candidate.hidden,), alpha=candidate.alpha, max_iter=60, early_stopping=True,
            random_state=SEED, batch_size=256, learning_rate_init=1e-3, n_iter_no_change=5,
        )  # fmt: skip
        model.fit(z[idx], data.y[idx])
        fields.update(
            hidden_coef=model.coefs_[0].T, hidden_intercept=model.intercepts_[0],
            coef=model.coefs_[1].T, intercept=model.intercepts_[1],
        )  # fmt: skip
    return fields


def _head(fields: dict, candidate: Candidate, bias: np.ndarray | None = None) -> SentimentHead:
    hidden = (fields["hidden_coef"], fields["hidden_intercept"]) if "hidden_coef" in fields else None
    return SentimentHead(
        fields["coef"], fields["intercept"], LABELS, HEAD_VERSION, features=candidate.features,
        mean=fields["mean"], scale=fields["scale"], hidden=hidden, bias=bias,
    )  # fmt: skip


def _tune_bias(probs: np.ndarray, data: _Data, over: Sequence[str] = SELECT_ON) -> np.ndarray:
    """A per-class additive bias on log-probabilities that maximises mean macro-F1 (sets ``over``) on validation."""
    best, best_score = np.zeros(3), -1.0
    log_p = np.log(np.clip(probs, 1e-9, 1))
    for neutral in np.arange(-1.0, 1.51, 0.25):
        for positive in np.arange(-0.5, 0.51, 0.25):
            bias = np.array([0.0, neutral, positive])
            pred = (log_p + bias).argmax(axis=1)
            score = _selection_score(data, pred, over)
            if score > best_score + 1e-9:
                best, best_score = bias, score
    return best


def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-9, 1)).mean())


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): one scalar that makes probabilities honest on validation."""
    from touchpoint.models.sentiment import softmax

    grid = np.round(np.arange(0.5, 5.01, 0.05), 2)
    return float(min(grid, key=lambda t: _nll(softmax(logits / t), y)))


def _selection_score(data: _Data, pred: np.ndarray, over: Sequence[str] = SELECT_ON) -> float:
    sets = np.array(data.sets)
    return float(np.mean([macro_f1(data.y[sets == s], pred[sets == s]) for s in over if (sets == s).any()]))


def compare(train: _Data, progress: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Fit every candidate on train-minus-validation; score on validation only."""
    is_val = np.array([datasets.is_validation(t) for t in train.texts])
    fit_part, val_part = train.subset(~is_val), train.subset(is_val)
    rows = []
    for candidate in CANDIDATES:
        progress(candidate.name)
        fields = _fit(candidate, feature_matrix(candidate.features, fit_part.encoded, fit_part.texts), fit_part)
        head = _head(fields, candidate)
        val_x = feature_matrix(candidate.features, val_part.encoded, val_part.texts)
        temperature = _fit_temperature(head.logits_from_features(val_x), val_part.y)
        head.temperature = temperature
        probs = head.probabilities_from_features(val_x)
        bias = _tune_bias(probs, val_part) if candidate.tune_bias else np.zeros(3)
        pred = (np.log(np.clip(probs, 1e-9, 1)) + bias).argmax(axis=1)
        sets = np.array(val_part.sets)
        per_set = {s: round(macro_f1(val_part.y[sets == s], pred[sets == s]), 4) for s in SELECT_ON}
        rows.append({
            "name": candidate.name, "validation_macro_f1": per_set,
            "selection_score": round(_selection_score(val_part, pred), 4), "decision_bias": bias.tolist(),
            "temperature": temperature, "validation_nll": round(_nll(probs, val_part.y), 4),
            "validation_examples": int(len(val_part.y)), "fit_examples": int(len(fit_part.y)),
        })  # fmt: skip
    return rows


def write_weights(path: Path, fields: dict) -> None:
    """Weights next to the JSON metadata: the large hidden matrix as float16 (half the bytes, same labels)."""
    arrays = {k: np.asarray(v, dtype=np.float16 if k == "hidden_coef" else np.float32) for k, v in fields.items()}
    with path.open("wb") as handle:  # np.savez writes fixed zip timestamps: same weights, same bytes
        np.savez(handle, **arrays)


def train_frozen_head(
    data_dir: Path,
    out: Path | None = None,
    sets: Sequence[str] = TRAIN_SETS,
    encoder: SentenceEncoder | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TrainReport:
    """Compare candidates on validation, refit the best on all of train, write the artifact."""
    seed_everything()
    encoder = encoder or SentenceEncoder()
    train = load_split(data_dir, sets, "train", encoder, cache_dir)
    comparison = compare(train, progress)
    best_row = max(comparison, key=lambda r: r["selection_score"])  # first wins ties: simpler ones come first
    candidate = next(c for c in CANDIDATES if c.name == best_row["name"])
    progress(f"refit: {candidate.name}")
    fields = _fit(candidate, feature_matrix(candidate.features, train.encoded, train.texts), train)
    out = out or baseline_head_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    artifact = {
        "version": HEAD_VERSION,
        "encoder": ENCODER_NAME,
        "labels": list(LABELS),
        "approach": candidate.name,
        "candidate": asdict(candidate),
        "features": list(candidate.features),
        "trained_on": list(sets),
        "split": f"train (crc32 of text, {100 - datasets.TEST_PERCENT}%); approach chosen on a validation part of it",
        "examples": int(len(train.y)),
        "seed": SEED,
        "decision_bias": best_row["decision_bias"],
        "temperature": best_row["temperature"],
        "weights": out.with_suffix(".npz").name,
    }
    out.write_text(json.dumps(artifact, indent=1) + "\n")
    write_weights(out.with_suffix(".npz"), fields)
    out.with_name(out.stem + "-selection.json").write_text(
        json.dumps({"select_on": list(SELECT_ON), "chosen": candidate.name, "candidates": comparison}, indent=1) + "\n"
    )
    per_label = {LABELS[k]: int(v) for k, v in Counter(train.y.tolist()).items()}
    return TrainReport(out, int(len(train.y)), per_label, dict(Counter(train.sets)), candidate.name, comparison)
