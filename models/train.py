"""Train the sentiment head: logistic regression on frozen MiniLM embeddings.

Deterministic: fixed data order, the train split only (models/datasets.py),
lbfgs without randomness. ``touchpoint train sentiment`` writes
``models/artifacts/sentiment-head.json``, which the default enricher loads.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from models import datasets
from models.encoder import ENCODER_NAME, SentenceEncoder
from models.sentiment import LABELS, default_head_path

TRAIN_SETS = ("vader_tweets", "vader_amazon", "vader_movies", "uci_amazon", "uci_yelp")
HEAD_VERSION = "sentiment-head-v1"


@dataclass(frozen=True)
class TrainReport:
    path: Path
    examples: int
    per_label: dict[str, int]
    per_set: dict[str, int]


def train_sentiment(
    data_dir: Path,
    out: Path | None = None,
    sets: Sequence[str] = TRAIN_SETS,
    encoder: SentenceEncoder | None = None,
    regularisation: float = 2.0,
) -> TrainReport:
    rows = [row for name in sets for row in datasets.load(name, data_dir, split="train")]
    encoder = encoder or SentenceEncoder()
    embeddings = encoder.encode([r.text for r in rows])
    targets = np.array([LABELS.index(r.label) for r in rows])
    model = LogisticRegression(C=regularisation, max_iter=2000, class_weight="balanced")
    model.fit(embeddings, targets)
    out = out or default_head_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    artifact = {
        "version": HEAD_VERSION,
        "encoder": ENCODER_NAME,
        "labels": list(LABELS),
        "trained_on": list(sets),
        "split": f"train (crc32 of text, {100 - datasets.TEST_PERCENT}%)",
        "examples": len(rows),
        "regularisation_C": regularisation,
        "created": datetime.now(timezone.utc).date().isoformat(),
        "coef": np.round(model.coef_, 6).tolist(),
        "intercept": np.round(model.intercept_, 6).tolist(),
    }
    out.write_text(json.dumps(artifact, indent=None) + "\n")
    return TrainReport(out, len(rows), dict(Counter(r.label for r in rows)), dict(Counter(r.dataset for r in rows)))
