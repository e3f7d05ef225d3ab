"""Emotions CX teams act on, multi-label: prototype similarity, sentiment-gated, thresholds calibrated.

Method (measured in models/MODEL_CARD.md): each emotion is a set of descriptive
phrases; its prototype is the normalised mean of their embeddings. A text
carries an emotion when its cosine similarity to the prototype clears that
emotion's threshold and the sentiment head agrees with the emotion's polarity
(P(negative) or P(positive) at least ``min_polarity``). Thresholds are
calibrated on the *dev* part of models/labels/cx_labelled.jsonl
(`touchpoint train tagging`) and stored in models/artifacts/tagging.json;
the *test* part is only used by `touchpoint eval`.

The six labels fold the usual CX pairs: ``anger`` = anger/frustration,
``joy`` = joy/satisfaction, ``urgency`` = urgency/worry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.encoder import SentenceEncoder
from touchpoint.models.touchpoints import prototypes


@dataclass(frozen=True)
class Emotion:
    name: str
    polarity: str  # negative | positive | any
    phrases: tuple[str, ...]


EMOTIONS: tuple[Emotion, ...] = (
    Emotion("anger", "negative", (
        "I am furious and angry", "this is outrageous and unacceptable", "I'm so mad at you",
        "this is so frustrating", "fed up with this, it keeps failing", "I hate this stupid thing",
        "they were rude and I'm livid", "what a joke, total ripoff",
    )),
    Emotion("disappointment", "negative", (
        "I'm really disappointed", "expected so much more, what a letdown", "it was not as good as I hoped",
        "sadly it stopped working", "mediocre, not worth it", "I won't be coming back",
    )),
    Emotion("confusion", "any", (
        "I'm confused, I don't understand", "how does this work?", "this makes no sense to me",
        "why does it do that?", "the instructions are unclear", "can someone explain this to me?",
    )),
    Emotion("urgency", "any", (
        "I need this fixed right now", "urgent, please help asap", "I'm worried about my order",
        "I'm anxious my money is gone", "still waiting, when will it arrive?", "I'm scared this will happen again",
    )),
    Emotion("joy", "positive", (
        "I love it, so happy", "this made my day", "absolutely delighted", "works great, very satisfied",
        "excellent, exactly what I wanted", "amazing experience, highly recommend",
    )),
    Emotion("gratitude", "any", (
        "thank you so much for your help", "thanks to the team, really appreciate it", "grateful for the support",
        "thanks!", "many thanks for the kind words", "I appreciate it",
    )),
)  # fmt: skip
NAMES = tuple(e.name for e in EMOTIONS)
DEFAULT_THRESHOLD = 0.45
MIN_POLARITY = 0.3


def tagging_artifact_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("artifacts", "tagging.json")))


def load_calibration(path: Path | None = None) -> dict:
    """Thresholds written by `touchpoint train tagging`; empty when never calibrated."""
    file = path or tagging_artifact_path()
    return json.loads(file.read_text()) if file.is_file() else {}


class EmotionTagger:
    def __init__(
        self, encoder: SentenceEncoder, min_similarity: float | None = None, thresholds: dict[str, float] | None = None
    ) -> None:
        calibrated = load_calibration().get("emotion_thresholds", {}) if thresholds is None else thresholds
        base = DEFAULT_THRESHOLD if min_similarity is None else min_similarity
        # an explicit min_similarity overrides calibration (one threshold for all)
        self.thresholds = np.array([base if min_similarity is not None else calibrated.get(n, base) for n in NAMES])
        self.prototypes = prototypes(encoder, [e.phrases for e in EMOTIONS])
        self.polarity = [e.polarity for e in EMOTIONS]

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.prototypes.T

    def allowed(self, probabilities: Sequence[tuple[float, float, float] | None]) -> np.ndarray:
        """(n, emotions) mask: does the sentiment agree with each emotion's polarity?"""
        mask = np.ones((len(probabilities), len(EMOTIONS)), dtype=bool)
        for i, probs in enumerate(probabilities):
            if probs is None:
                mask[i] = False
                continue
            for j, polarity in enumerate(self.polarity):
                if polarity == "negative":
                    mask[i, j] = probs[0] >= MIN_POLARITY
                elif polarity == "positive":
                    mask[i, j] = probs[2] >= MIN_POLARITY
        return mask

    def tag(
        self, embeddings: np.ndarray, sentiment: Sequence[str | None | tuple[float, float, float]]
    ) -> list[list[str]]:
        """Emotion names per text, strongest first. ``sentiment``: probabilities (or a label, v1 callers)."""
        probabilities = [_as_probabilities(s) for s in sentiment]
        scores = self.similarities(embeddings)
        hits = (scores >= self.thresholds) & self.allowed(probabilities)
        return [[NAMES[j] for j in np.argsort(-row) if hit[j]] for row, hit in zip(scores, hits)]


def _as_probabilities(value: str | None | tuple[float, float, float]) -> tuple[float, float, float] | None:
    if value is None or isinstance(value, tuple):
        return value
    return {"negative": (1.0, 0.0, 0.0), "neutral": (0.0, 1.0, 0.0), "positive": (0.0, 0.0, 1.0)}[value]
