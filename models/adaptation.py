"""Per-stream label-shift adaptation: a brand's own class priors, estimated from its unlabelled texts.

A brand's stream does not have the label mix the model was calibrated on
(customer-service posts are mostly complaints; the training mix is mostly
positive). Under label shift, p(text | label) stays and only p(label) moves,
so calibrated probabilities can be corrected with the ratio of the target
prior to the source prior. The target prior is estimated without labels by
EM (Saerens, Latinne & Decaestecker, Neural Computation 2002): adjust every
posterior with the current prior, average them into a new prior, repeat.
It needs calibrated probabilities; the sentiment artifact carries a
temperature and per-class biases fitted by likelihood on validation (Alexandari
et al., ICML 2020: bias-corrected calibration makes EM work), and the
validation label mix as the source prior.

A shifted prior alone moves labels toward the majority class: more accurate,
but the minority classes lose recall and macro-F1 falls (the card's shift
table). So a brand's prior comes with its own decision bias, chosen on the
brand's unlabelled texts for the plug-in estimate of macro-F1: the shifted
posteriors stand in for the unknown labels in the expected confusion matrix
(Ye et al., ICML 2012, "Optimizing F-measures: a tale of two approaches").

Priors live in one JSON file (``sentiment_priors_path``), written by
``touchpoint train priors --brand B``, read by the enricher, and applied to
that brand's texts only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

MIN_TEXTS = 200  # fewer texts than this give a prior too noisy to act on
MAX_ITERATIONS = 1000
TOLERANCE = 1e-6
FLOOR = 1e-3  # no class's prior goes below this: a shift must never make a class impossible


BIAS_GRID = np.round(np.arange(-3.0, 3.01, 0.125), 3)  # per-class decision bias searched, in nats
MIN_CLASS_SHARE = 0.02  # a class expected below this share of a stream is not averaged into its macro-F1


@dataclass(frozen=True)
class Shift:
    """How one stream's texts are classified: its label prior and the decision bias chosen for it."""

    prior: tuple[float, float, float]
    decision_bias: tuple[float, float, float] | None = None  # None: the model's own bias


@dataclass(frozen=True)
class Estimate:
    prior: tuple[float, float, float]
    iterations: int
    converged: bool


def adjust(
    probabilities: np.ndarray, source_prior: Sequence[float], target_prior: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Posteriors under ``target_prior`` (one for all rows, or one per row): p(y|x) * target(y) / source(y),
    renormalised per row."""
    ratio = np.asarray(target_prior, dtype=np.float64) / np.asarray(source_prior, dtype=np.float64)
    shifted = np.asarray(probabilities, dtype=np.float64) * ratio
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def estimate_prior(probabilities: np.ndarray, source_prior: Sequence[float]) -> Estimate:
    """EM for the class prior of the texts behind ``probabilities`` (n, classes), from ``source_prior``."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError("prior estimation needs at least one row of class probabilities")
    source = np.asarray(source_prior, dtype=np.float64)
    prior = source.copy()
    for iteration in range(1, MAX_ITERATIONS + 1):
        shifted = probs * (prior / source)
        new = (shifted / shifted.sum(axis=1, keepdims=True)).mean(axis=0)
        new = np.maximum(new, FLOOR) / np.maximum(new, FLOOR).sum()
        if np.abs(new - prior).max() < TOLERANCE:
            return Estimate(tuple(float(v) for v in new), iteration, True)  # type: ignore[arg-type]
        prior = new
    return Estimate(tuple(float(v) for v in prior), MAX_ITERATIONS, False)  # type: ignore[arg-type]


def expected_macro_f1(posteriors: np.ndarray, predicted: np.ndarray) -> float:
    """Plug-in macro-F1 of ``predicted`` labels when each text's label is distributed as its posterior row."""
    expected = posteriors.sum(axis=0)  # expected gold count per class
    scores = []
    for label in np.flatnonzero(expected / len(posteriors) >= MIN_CLASS_SHARE):
        chosen = predicted == label
        true_positives = posteriors[chosen, label].sum()
        scores.append(2 * true_positives / (chosen.sum() + expected[label]))
    return float(np.mean(scores)) if scores else 0.0


def macro_f1_decision_bias(posteriors: np.ndarray) -> tuple[float, float, float]:
    """The per-class bias on log-posteriors (negative fixed at 0) that maximises the plug-in macro-F1 on
    these texts: no labels needed, only posteriors calibrated for the stream (after :func:`adjust`)."""
    probs = np.asarray(posteriors, dtype=np.float64)
    log_p = np.log(np.clip(probs, 1e-9, 1.0))
    best, best_score = (0.0, 0.0, 0.0), -1.0
    for neutral in BIAS_GRID:
        for positive in BIAS_GRID:
            bias = (0.0, float(neutral), float(positive))
            score = expected_macro_f1(probs, (log_p + bias).argmax(axis=1))
            if score > best_score + 1e-12:
                best, best_score = bias, score
    return best


def shift_for(probabilities: np.ndarray, source_prior: Sequence[float], prior: Sequence[float]) -> Shift:
    """A stream's :class:`Shift`: ``prior`` and the plug-in macro-F1 decision bias of the probabilities under it."""
    bias = macro_f1_decision_bias(adjust(probabilities, source_prior, prior))
    return Shift(tuple(float(v) for v in prior), bias)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BrandPrior:
    """One brand's estimated prior, and what it was estimated with (a prior belongs to one model)."""

    prior: tuple[float, float, float]
    texts: int
    model_version: str
    estimated_at: str
    source: str  # where the texts came from (stored signals, a file)
    decision_bias: tuple[float, float, float] | None = None  # None in files written before the bias existed

    @property
    def shift(self) -> Shift:
        return Shift(self.prior, self.decision_bias)


def load_priors(path: Path | None) -> dict[str, BrandPrior]:
    """Brand -> prior from the priors file; empty when there is no file."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            brand: BrandPrior(tuple(entry["prior"]), int(entry["texts"]), entry["model_version"],  # type: ignore[arg-type]
                              entry["estimated_at"], entry.get("source", ""),
                              tuple(entry["decision_bias"]) if entry.get("decision_bias") else None)
            for brand, entry in data.items()
        }  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a sentiment priors file ({exc}); delete it or re-run `touchpoint train priors`"
        ) from exc


def save_prior(path: Path, brand: str, shift: Shift, texts: int, model_version: str, source: str) -> BrandPrior:
    """Add or replace one brand's prior and decision bias in the priors file (other brands are kept)."""
    priors = load_priors(path)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry = BrandPrior(shift.prior, texts, model_version, now, source, shift.decision_bias)
    priors[brand] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({b: asdict(p) for b, p in sorted(priors.items())}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return entry


def fit_calibration(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Bias-corrected temperature scaling: the temperature T and per-class biases b that make
    softmax(logits / T + b) minimise the negative log-likelihood of held-out labels ``y``.

    At the optimum the mean calibrated probability of each class equals its share
    of ``y``, so that share is the source prior EM adjusts from.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    onehot = np.eye(z.shape[1])[np.asarray(y)]

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, bias = np.exp(-params[0]), np.concatenate([[0.0], params[1:]])
        scaled = z * inv_t + bias
        scaled -= scaled.max(axis=1, keepdims=True)
        log_p = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        loss = -(onehot * log_p).sum(axis=1).mean()
        residual = (p - onehot) / len(z)  # d loss / d scaled
        grad_t = -(residual * z * inv_t).sum()  # d scaled / d params[0] = -z / T
        return float(loss), np.concatenate([[grad_t], residual.sum(axis=0)[1:]])

    found = minimize(nll, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B")
    return float(np.exp(found.x[0])), np.concatenate([[0.0], found.x[1:]]).astype(np.float32)
