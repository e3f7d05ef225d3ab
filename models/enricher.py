"""All enrichment for a batch of texts: redact, detect language, embed once, then classify.

Blocking and CPU-bound: async callers run :meth:`Enricher.enrich` in an
executor. The encoder runs once per text; every head reuses the embedding.
When the sentiment artifact fine-tuned encoder layers, the encoder loads
them: the one pass is the fine-tuned one, and every head reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.adaptation import BrandPrior, load_priors
from touchpoint.models.emotion import EmotionTagger
from touchpoint.models.encoder import Encoded, SentenceEncoder
from touchpoint.models.language import detect_language
from touchpoint.models.pii import PiiRedactor, Redaction
from touchpoint.models.sentiment import UNSCORED, SentimentHead, normalise_text
from touchpoint.models.touchpoints import Taxonomy, TouchpointTagger

log = logging.getLogger(__name__)


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
    sentiment_reason: str | None = None  # why sentiment_label is "unknown" (a language the model cannot read)


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
    sentiment_priors_path: str | None = None  # per-brand label priors (models/adaptation.py); None: none applied


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
        self.sentiment = load_sentiment(config)
        self.encoder = SentenceEncoder(config.encoder_path, max_tokens=config.max_tokens, tuned=self.sentiment.tuned)
        self.sentiment_version = f"{self.encoder.name}/{self.sentiment.version}"
        priors_file = Path(config.sentiment_priors_path) if config.sentiment_priors_path else None
        self.priors = self._usable_priors(load_priors(priors_file))
        self.taxonomy = Taxonomy.load(config.taxonomy_path)
        self.touchpoints = TouchpointTagger(
            self.encoder, self.taxonomy, config.touchpoint_min_similarity, config.touchpoint_max_tags
        )
        self.emotions = EmotionTagger(self.encoder, config.emotion_min_similarity)
        self.redactor = PiiRedactor(config.phone_region)
        self.version = f"{self.sentiment_version}/taxonomy-v{self.taxonomy.version}"
        self.encoder_batch_size = config.encoder_batch_size

    def _usable_priors(self, priors: dict[str, BrandPrior]) -> dict[str, tuple[float, float, float]]:
        """Brand priors estimated with this sentiment model; a prior from another model is skipped, with the fix."""
        if priors and self.sentiment.source_prior is None:
            log.warning("sentiment priors ignored: %s has no calibrated source prior", self.sentiment.version)
            return {}
        usable = {}
        for brand, entry in priors.items():
            if entry.model_version == self.sentiment_version:
                usable[brand] = entry.prior
            else:
                log.warning("sentiment prior of brand %r was estimated with %s, not %s: re-run "
                            "`touchpoint train priors --brand %s`",
                            brand, entry.model_version, self.sentiment_version, brand)  # fmt: skip
        return usable

    def _read(self, texts: Sequence[str | None]) -> "_Read":
        """What every head starts from: redacted text, its language, whether sentiment may read it, one encoder pass."""
        redactions = [self.redactor.redact(text) for text in texts]
        clean = [r.text for r in redactions]
        has_text = [bool(text and text.strip()) for text in clean]
        languages = [detect_language(text) if present else "und" for text, present in zip(clean, has_text)]
        unscored = [self.sentiment.unscored_reason(code) if present else None for code, present in zip(languages, has_text)]
        normalised = [normalise_text(text) if text else text for text in clean]
        encoded = self.encoder.encode_rich(normalised, batch_size=self.encoder_batch_size)
        read = [present and reason is None for present, reason in zip(has_text, unscored)]
        return _Read(redactions, clean, has_text, languages, unscored, normalised, encoded, read)

    def sentiment_probabilities(self, texts: Sequence[str | None]) -> np.ndarray:
        """Calibrated sentiment probabilities (no brand prior) of the texts sentiment reads; the input of
        prior estimation (models/adaptation.py). Texts without text or in unscored languages are left out."""
        seen = self._read(texts)
        results = self.sentiment.predict_texts(seen.normalised, seen.encoded)
        return np.array([r.probabilities for r, ok in zip(results, seen.read) if ok], dtype=np.float32).reshape(-1, 3)

    def enrich(
        self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None,
        brands: Sequence[str | None] | None = None,
    ) -> list[Enrichment]:  # fmt: skip
        """Enrich a batch; ``brands`` (one per text) selects each brand's sentiment prior where one was estimated."""
        hints = list(hints) if hints is not None else [None] * len(texts)
        seen = self._read(texts)
        embeddings = seen.encoded.sentence
        priors = [self.priors.get(brand or "") for brand in brands] if brands is not None and self.priors else None
        sentiments = self.sentiment.predict_texts(seen.normalised, seen.encoded, priors)
        # a text the model cannot read gets no emotion either: the gate needs a sentiment it does not have
        gate = [s.probabilities if ok else None for s, ok in zip(sentiments, seen.read)]
        emotions = self.emotions.tag(embeddings, gate)
        tags = self.touchpoints.tag(embeddings, hints)
        results = []
        for i, present in enumerate(seen.has_text):
            touchpoints, stage = tags[i]
            if not present and not hints[i]:
                touchpoints, stage = [], "unknown"
            label = (sentiments[i].label if seen.read[i] else UNSCORED) if present else None
            results.append(
                Enrichment(
                    text_redacted=seen.clean[i] if present else None,
                    pii_found=list(seen.redactions[i].found),
                    language=seen.languages[i],
                    sentiment_label=label,
                    sentiment_score=round(sentiments[i].score, 4) if seen.read[i] else None,
                    emotions=emotions[i] if seen.read[i] else [],
                    touchpoints=touchpoints,
                    journey_stage=stage,
                    sentiment_reason=seen.unscored[i],
                )
            )
        return results


@dataclass(frozen=True)
class _Read:
    redactions: list[Redaction]
    clean: list[str | None]
    has_text: list[bool]
    languages: list[str]
    unscored: list[str | None]
    normalised: list[str | None]
    encoded: Encoded
    read: list[bool]  # has text, in a language sentiment reads
