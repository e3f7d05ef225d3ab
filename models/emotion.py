"""Emotions CX teams act on, multi-label: similarity to brand-editable phrases, sentiment-gated, calibrated.

The emotions, their polarity and their phrases live in a YAML file a brand
edits (bundled: models/emotions.yaml; settings ``emotions_path``). Each
emotion's prototype is the normalised mean of its phrases' embeddings. A text
carries the emotion when its cosine similarity to the prototype clears the
emotion's threshold and the sentiment head agrees with the emotion's polarity
(the polar class at least ``MIN_POLARITY`` and at least as likely as the
opposite one: no ``joy`` on a text read as more negative than positive).

Thresholds, first that applies: an explicit ``min_similarity``; those
`touchpoint train tagging` calibrated (models/artifacts/tagging.json, by
emotion name; see models/tagging_eval.py: F1 on the *dev* part of
models/labels/cx_labelled.jsonl where an emotion has enough examples there,
else the dev base rate matched on unlabelled real texts, so a rare emotion
still fires); for an emotion never calibrated (a brand added it), the
threshold that separates its phrases from the others' on the phrases
themselves, shifted by the offset the calibration measured between phrases
and real texts. The *test* part is only used by `touchpoint eval`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.datafile import DataFileError, check_keys, read_yaml, text_list, where
from touchpoint.models.encoder import SentenceEncoder, prototypes

# The labels of the bundled file (and of the project's labelled set).
NAMES = ("anger", "disappointment", "confusion", "urgency", "joy", "gratitude")
POLARITIES = ("negative", "positive", "any")
DEFAULT_THRESHOLD = 0.45
MIN_POLARITY = 0.3
GRID = tuple(float(t) for t in np.round(np.arange(0.1, 0.8, 0.01), 2))


@dataclass(frozen=True)
class Emotion:
    name: str
    polarity: str  # negative | positive | any
    description: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class EmotionSet:
    version: str
    emotions: tuple[Emotion, ...]
    fingerprint: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.emotions)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EmotionSet":
        """Read and check an emotions file; mistakes are :class:`DataFileError` naming the line and the fix."""
        file = Path(path).expanduser() if path else bundled_emotions_path()
        data = read_yaml(file, "emotions")
        check_keys(file, data, ("version", "emotions"), "the emotions file")
        items = data.get("emotions")
        if not isinstance(items, list) or not items:
            raise DataFileError(f"{file}: `emotions` must be a non-empty list of entries with name, polarity, phrases")
        emotions, seen = [], set()
        for item in items:
            if not isinstance(item, dict):
                raise DataFileError(f"{file}: each entry of `emotions` must be a mapping with name, polarity, phrases")
            check_keys(file, item, ("name", "polarity", "description", "phrases"), "an emotion")
            name = item.get("name")
            if not isinstance(name, str) or not name.replace("_", "").isalnum() or name != name.lower():
                raise DataFileError(f"{where(file, item)}: an emotion needs a `name` in lower_snake_case, e.g. anger")
            if name in seen:
                raise DataFileError(f"{where(file, item)}: emotion {name!r} appears twice; merge its phrases")
            seen.add(name)
            polarity = item.get("polarity", "any")
            if polarity not in POLARITIES:
                raise DataFileError(
                    f"{where(file, item)}: emotion {name!r} has polarity {polarity!r}; use one of {', '.join(POLARITIES)}"
                )
            phrases = text_list(file, item, "phrases", f"emotion {name!r}")
            if len(phrases) < 3:
                raise DataFileError(f"{where(file, item)}: emotion {name!r} needs at least 3 phrases (how customers say it)")
            emotions.append(Emotion(name, polarity, str(item.get("description", "")).strip(), phrases))
        fingerprint = hashlib.sha256(file.read_bytes()).hexdigest()
        return cls(str(data.get("version", "1")), tuple(emotions), fingerprint)


def bundled_emotions_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("emotions.yaml")))


def tagging_artifact_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("artifacts", "tagging.json")))


def load_calibration(path: Path | None = None) -> dict:
    """Thresholds written by `touchpoint train tagging`; empty when never calibrated."""
    file = path or tagging_artifact_path()
    return json.loads(file.read_text()) if file.is_file() else {}


class EmotionTagger:
    def __init__(
        self, encoder: SentenceEncoder, min_similarity: float | None = None, thresholds: dict[str, float] | None = None,
        path: str | Path | None = None, calibration: dict | None = None,
    ) -> None:  # fmt: skip
        self.emotion_set = EmotionSet.load(path)
        self.names = self.emotion_set.names
        self.polarity = [e.polarity for e in self.emotion_set.emotions]
        self.prototypes = prototypes(encoder, [e.phrases for e in self.emotion_set.emotions])
        if min_similarity is not None:  # one threshold for all overrides calibration
            self.thresholds, self.threshold_source = np.full(len(self.names), min_similarity), "settings"
            return
        stored = load_calibration() if calibration is None else calibration
        known = dict(stored.get("emotion_thresholds", {}) if thresholds is None else thresholds)
        missing = [n for n in self.names if n not in known]
        if missing:  # never calibrated: from the phrases, shifted to the scale of real texts
            offset = float(stored.get("emotion_phrase_offset", 0.0))
            from_phrases = thresholds_from_phrases(encoder, self.emotion_set)
            known.update({n: round(from_phrases[n] + offset, 2) for n in missing})
        self.thresholds = np.array([known[n] for n in self.names])
        self.threshold_source = "calibrated" if not missing else f"calibrated; from phrases: {', '.join(missing)}"

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.prototypes.T

    def allowed(self, probabilities: Sequence[tuple[float, float, float] | None]) -> np.ndarray:
        """(n, emotions) mask: does the sentiment agree with each emotion's polarity?"""
        mask = np.ones((len(probabilities), len(self.names)), dtype=bool)
        for i, probs in enumerate(probabilities):
            if probs is None:
                mask[i] = False
                continue
            negative, positive = probs[0], probs[2]
            for j, polarity in enumerate(self.polarity):
                if polarity == "negative":
                    mask[i, j] = negative >= MIN_POLARITY and negative >= positive
                elif polarity == "positive":
                    mask[i, j] = positive >= MIN_POLARITY and positive >= negative
        return mask

    def tag(
        self, embeddings: np.ndarray, sentiment: Sequence[str | None | tuple[float, float, float]]
    ) -> list[list[str]]:
        """Emotion names per text, strongest first. ``sentiment``: probabilities (or a label, v1 callers)."""
        probabilities = [_as_probabilities(s) for s in sentiment]
        scores = self.similarities(embeddings)
        hits = (scores >= self.thresholds) & self.allowed(probabilities)
        return [[self.names[j] for j in np.argsort(-row) if hit[j]] for row, hit in zip(scores, hits)]



def thresholds_from_phrases(encoder: SentenceEncoder, emotion_set: EmotionSet) -> dict[str, float]:
    """Per emotion, the threshold that best separates its phrases (each left out of the prototype in turn)
    from the other emotions' phrases and off-topic texts: no labels needed, but on the scale of short phrases."""
    from touchpoint.models.touchpoint_calibration import bundled_off_topic

    emotions = emotion_set.emotions
    vectors = [encoder.encode(list(e.phrases)) for e in emotions]
    off_topic = encoder.encode(list(bundled_off_topic()))
    out = {}
    for j, emotion in enumerate(emotions):
        own = vectors[j]
        scores = []
        for i in range(len(own)):  # leave one out: a phrase never matches itself
            rest = np.delete(own, i, axis=0).mean(axis=0)
            scores.append(float(own[i] @ (rest / (np.linalg.norm(rest) or 1.0))))
        proto = own.mean(axis=0) / (np.linalg.norm(own.mean(axis=0)) or 1.0)
        others = np.vstack([*(v for k, v in enumerate(vectors) if k != j), off_topic]) @ proto
        gold = np.array([True] * len(scores) + [False] * len(others))
        out[emotion.name] = best_threshold(np.array(scores + others.tolist()), gold)
    return out


def best_threshold(scores: np.ndarray, gold: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """The grid threshold with the best F1 (ties keep the lowest)."""
    allowed = np.ones_like(gold, dtype=bool) if allowed is None else allowed
    best, best_f1 = DEFAULT_THRESHOLD, -1.0
    for t in GRID:
        pred = (scores >= t) & allowed
        total = pred.sum() + gold.sum()
        f1 = 2 * float((pred & gold).sum()) / total if total else 0.0
        if f1 > best_f1 + 1e-9:
            best, best_f1 = t, f1
    return best


def _as_probabilities(value: str | None | tuple[float, float, float]) -> tuple[float, float, float] | None:
    if value is None or isinstance(value, tuple):
        return value
    return {"negative": (1.0, 0.0, 0.0), "neutral": (0.0, 1.0, 0.0), "positive": (0.0, 0.0, 1.0)}[value]
