"""Measure label-shift adaptation: test texts resampled to another label mix, with and without EM priors.

A brand's stream differs from the training mix mostly in how many complaints
it holds. Each mix below takes held-out (test split) texts and keeps, per
class, the first texts in a stable hash order until the target shares are
met (as many texts as the rarest class allows). On each mix: macro-F1 of the
model as is; after EM re-estimates the prior from the mix's own texts with the
model's decision bias; with that prior and the decision bias chosen for the
mix by plug-in macro-F1 (what `touchpoint train priors` saves; labels unused
throughout); and with the true prior (the ceiling, plug-in bias). Also the
error of the label shares an analyst reads: counted from the labels as is, and
EM's estimate (total variation distance to the true mix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from touchpoint.models import datasets
from touchpoint.models.adaptation import Shift, estimate_prior, shift_for
from touchpoint.models.cache import encode_cached
from touchpoint.models.sentiment import LABELS

# name, sets, target shares (negative, neutral, positive); None keeps the sets' own mix
MIXES: tuple[tuple[str, tuple[str, ...], tuple[float, float, float] | None], ...] = (
    ("tweets, as labelled", ("vader_tweets",), None),
    ("tweets, complaint-heavy 60/25/15", ("vader_tweets",), (0.6, 0.25, 0.15)),
    ("tweets + Amazon snippets, complaint-heavy 60/25/15", ("vader_tweets", "vader_amazon"), (0.6, 0.25, 0.15)),
    ("tweets + Amazon snippets, neutral-heavy 25/50/25", ("vader_tweets", "vader_amazon"), (0.25, 0.5, 0.25)),
    ("Amazon + Yelp sentences, complaint-heavy 80/0/20", ("uci_amazon", "uci_yelp"), (0.8, 0.0, 0.2)),
)  # fmt: skip


def resample(
    rows: Sequence[datasets.LabelledText], shares: tuple[float, float, float] | None
) -> list[datasets.LabelledText]:
    """Rows with the target label shares, as many as the scarcest class allows, in a stable order."""
    if shares is None:
        return list(rows)
    by_label = {label: datasets.sample([r for r in rows if r.label == label], len(rows)) for label in LABELS}
    total = min(len(by_label[label]) / share for label, share in zip(LABELS, shares) if share > 0)
    return [r for label, share in zip(LABELS, shares) for r in by_label[label][: int(total * share)]]


def _macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    from touchpoint.models.evaluate import score

    return score(gold, pred).macro_f1


def _distance(shares: Sequence[float], true: Sequence[float]) -> float:
    """Total variation distance between two label mixes: the share of texts counted under the wrong label."""
    return float(np.abs(np.asarray(shares) - np.asarray(true)).sum() / 2)


def evaluate_label_shift(enricher: Any, data_dir: Path, cache_dir: Path | None) -> list[dict]:
    """One row per mix: true and estimated prior, macro-F1 without, with EM, with the true prior."""
    head = enricher.sentiment
    if getattr(head, "source_prior", None) is None:
        return []
    rows_out = []
    for name, sets, shares in MIXES:
        rows = resample([r for s in sets for r in datasets.load(s, data_dir, split="test")], shares)
        texts, gold = [r.text for r in rows], [r.label for r in rows]
        encoded = encode_cached(enricher.encoder, texts, cache_dir)
        plain = head.predict_texts(texts, encoded)
        probabilities = np.array([r.probabilities for r in plain])
        estimate = estimate_prior(probabilities, head.source_prior)
        prior_only = head.predict_texts(texts, encoded, [Shift(estimate.prior)] * len(texts))
        adapted = head.predict_texts(texts, encoded, [shift_for(probabilities, head.source_prior, estimate.prior)] * len(texts))
        true_prior = tuple(float(np.mean([g == label for g in gold])) for label in LABELS)
        ceiling = shift_for(probabilities, head.source_prior, tuple(max(v, 1e-3) for v in true_prior))
        oracle = head.predict_texts(texts, encoded, [ceiling] * len(texts))
        counted = tuple(float(np.mean([r.label == label for r in plain])) for label in LABELS)
        rows_out.append({
            "mix": name, "n": len(rows), "true_prior": true_prior, "estimated_prior": estimate.prior,
            "iterations": estimate.iterations, "none": _macro_f1(gold, [r.label for r in plain]),
            "em_prior_only": _macro_f1(gold, [r.label for r in prior_only]),
            "em": _macro_f1(gold, [r.label for r in adapted]), "true": _macro_f1(gold, [r.label for r in oracle]),
            "share_error_counted": _distance(counted, true_prior), "share_error_em": _distance(estimate.prior, true_prior),
        })  # fmt: skip
    return rows_out
