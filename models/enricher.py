"""All enrichment for a batch of texts: redact, detect language, embed once, then classify.

Blocking and CPU-bound: async callers run :meth:`Enricher.enrich` in an
executor. The encoder runs once per text; every head reuses the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from touchpoint.models.emotion import EmotionTagger
from touchpoint.models.encoder import ENCODER_NAME, SentenceEncoder
from touchpoint.models.language import detect_language
from touchpoint.models.pii import PiiRedactor
from touchpoint.models.sentiment import SentimentHead, normalise_text
from touchpoint.models.touchpoints import Taxonomy, TouchpointTagger


@dataclass(frozen=True)
class Enrichment:
    text_redacted: str | None
    pii_found: list[str]
    language: str
    sentiment_label: str | None
    sentiment_score: float | None
    emotions: list[str]
    touchpoints: list[str]
    journey_stage: str


@dataclass(frozen=True)
class EnricherConfig:
    encoder_path: str | None = None
    sentiment_head_path: str | None = None
    taxonomy_path: str | None = None
    max_tokens: int = 256
    # Texts per encoder forward pass. Length-sorted micro-batches of 8 pad far
    # less than one pass over a whole enrich batch: 1.8x faster on 2 CPU cores
    # (bench/enrich.py).
    encoder_batch_size: int = 8
    touchpoint_min_similarity: float | None = None  # None: calibrated (models/artifacts/tagging.json)
    touchpoint_max_tags: int = 3
    phone_region: str = "US"
    sentiment_model: str | None = None  # a Hugging Face classifier (folder or hub id) instead of the head
    sentiment_label_map: dict[str, str] | None = None  # its labels -> negative|neutral|positive
    emotion_min_similarity: float | None = None  # None: the calibrated default in models/emotion.py


def load_sentiment(config: EnricherConfig):  # type: ignore[no-untyped-def]
    """The packaged head by default; a configured Hugging Face classifier when ``sentiment_model`` is set."""
    if config.sentiment_model:
        from touchpoint.models.hf_sentiment import HFSentiment

        return HFSentiment(config.sentiment_model, config.sentiment_label_map, max_tokens=config.max_tokens)
    return SentimentHead.load(config.sentiment_head_path)


class Enricher:
    """Loads every model once; :meth:`enrich` is safe to call repeatedly from one thread."""

    def __init__(self, config: EnricherConfig | None = None) -> None:
        config = config or EnricherConfig()
        self.encoder = SentenceEncoder(config.encoder_path, max_tokens=config.max_tokens)
        self.sentiment = load_sentiment(config)
        self.taxonomy = Taxonomy.load(config.taxonomy_path)
        self.touchpoints = TouchpointTagger(
            self.encoder, self.taxonomy, config.touchpoint_min_similarity, config.touchpoint_max_tags
        )
        self.emotions = EmotionTagger(self.encoder, config.emotion_min_similarity)
        self.redactor = PiiRedactor(config.phone_region)
        self.version = f"{ENCODER_NAME}/{self.sentiment.version}/taxonomy-v{self.taxonomy.version}"
        self.encoder_batch_size = config.encoder_batch_size

    def enrich(self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None) -> list[Enrichment]:
        hints = list(hints) if hints is not None else [None] * len(texts)
        redactions = [self.redactor.redact(text) for text in texts]
        clean = [r.text for r in redactions]
        normalised = [normalise_text(text) if text else text for text in clean]
        encoded = self.encoder.encode_rich(normalised, batch_size=self.encoder_batch_size)
        embeddings = encoded.sentence
        sentiments = self.sentiment.predict_texts(normalised, encoded)
        has_text = [bool(text and text.strip()) for text in clean]
        labels = [s.label if present else None for s, present in zip(sentiments, has_text)]
        emotions = self.emotions.tag(
            embeddings, [s.probabilities if present else None for s, present in zip(sentiments, has_text)]
        )
        tags = self.touchpoints.tag(embeddings, hints)
        results = []
        for i, present in enumerate(has_text):
            touchpoints, stage = tags[i]
            if not present and not hints[i]:
                touchpoints, stage = [], "unknown"
            results.append(
                Enrichment(
                    text_redacted=clean[i] if present else None,
                    pii_found=list(redactions[i].found),
                    language=detect_language(clean[i]) if present else "und",
                    sentiment_label=labels[i],
                    sentiment_score=round(sentiments[i].score, 4) if present else None,
                    emotions=emotions[i] if present else [],
                    touchpoints=touchpoints,
                    journey_stage=stage,
                )
            )
        return results
