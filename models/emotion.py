"""Emotions CX teams act on, multi-label, by similarity to described prototypes.

First version: each emotion is a handful of descriptive phrases; a text carries
an emotion when its embedding is close enough to that emotion's prototype and
its sentiment agrees with the emotion's polarity. Issue-level quality work
(a trained multi-label head, measured on a labelled set) replaces this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models.encoder import SentenceEncoder
from models.touchpoints import prototypes


@dataclass(frozen=True)
class Emotion:
    name: str
    polarity: str  # negative | positive | any
    phrases: tuple[str, ...]


EMOTIONS: tuple[Emotion, ...] = (
    Emotion("anger", "negative", ("I am furious and angry", "this is outrageous and unacceptable", "I'm so mad at you")),
    Emotion("frustration", "negative", ("this is so frustrating", "I keep trying and it still doesn't work", "fed up with this")),
    Emotion("disappointment", "negative", ("I'm really disappointed", "expected so much more, let down", "what a letdown")),
    Emotion("confusion", "any", ("I'm confused, I don't understand", "how does this work?", "this makes no sense to me")),
    Emotion("urgency", "any", ("I need this fixed right now", "urgent, please help asap", "this is an emergency")),
    Emotion("worry", "negative", ("I'm worried about my order", "I'm anxious my money is gone", "is my account safe?")),
    Emotion("joy", "positive", ("I love it, so happy", "this made my day", "absolutely delighted")),
    Emotion("satisfaction", "positive", ("works well, I'm satisfied", "good service, no complaints", "exactly what I wanted")),
    Emotion("gratitude", "positive", ("thank you so much for your help", "thanks to the team, really appreciate it", "grateful for the support")),
)


class EmotionTagger:
    def __init__(self, encoder: SentenceEncoder, min_similarity: float = 0.45) -> None:
        self.min_similarity = min_similarity
        self.prototypes = prototypes(encoder, [e.phrases for e in EMOTIONS])

    def tag(self, embeddings: np.ndarray, sentiment_labels: Sequence[str | None]) -> list[list[str]]:
        similarity = embeddings @ self.prototypes.T
        results = []
        for row, label in zip(similarity, sentiment_labels):
            names = []
            for index in np.argsort(-row):
                emotion = EMOTIONS[int(index)]
                if row[index] < self.min_similarity:
                    break
                if emotion.polarity == "any" or emotion.polarity == label:
                    names.append(emotion.name)
            results.append(names)
        return results
