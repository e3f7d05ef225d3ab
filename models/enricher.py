"""All enrichment for a batch of texts: redact, detect language, embed once, then classify.

Blocking and CPU-bound: async callers run :meth:`Enricher.enrich` in an
executor. The encoder runs once per text; every head reuses the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from touchpoint.models.emotion import EmotionTagger
from touchpoint.models.encoder import ENCODER_NAME, SentenceEncoder
from touchpoint.models.language import detect_language
from touchpoint.models.pii import PiiRedactor
from touchpoint.models.sentiment import SentimentHead, normalise_text
from touchpoint.models.touchpoints import Taxonomy, TouchpointTagger, resolve_taxonomy


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
    taxonomy_path: str | None = None  # the default taxonomy: a bundled pack name (airline...) or a YAML path
    taxonomy_packs: dict[str, str] | None = None  # brand -> pack name or YAML path; other brands get the default
    max_tokens: int = 256
    # Texts per encoder forward pass. Length-sorted micro-batches of 8 pad far
    # less than one pass over a whole enrich batch: 1.8x faster on 2 CPU cores
    # (bench/enrich.py).
    encoder_batch_size: int = 8
    touchpoint_min_similarity: float | None = None  # None: calibrated (models/artifacts/tagging.json)
    touchpoint_max_tags: int = 3
    phone_region: str = "US"
    phone_regions: tuple[str, ...] = ()  # more regions whose national phone formats redaction reads
    phone_regions_by_brand: dict[str, tuple[str, ...]] | None = None  # brand -> its regions, instead of the above
    emotions_path: str | None = None  # the brand's emotion descriptions (YAML); None: the bundled models/emotions.yaml
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
        # one tagger per distinct file, loaded now so a broken pack fails at start, not mid-stream
        taggers = {resolve_taxonomy(config.taxonomy_path): self.touchpoints}
        self.brand_touchpoints: dict[str, TouchpointTagger] = {}
        for brand, spec in (config.taxonomy_packs or {}).items():
            path = resolve_taxonomy(spec)
            if path not in taggers:
                taggers[path] = TouchpointTagger(
                    self.encoder, Taxonomy.load(path), config.touchpoint_min_similarity, config.touchpoint_max_tags
                )
            self.brand_touchpoints[brand] = taggers[path]
        self.emotions = EmotionTagger(self.encoder, config.emotion_min_similarity, path=config.emotions_path)
        self.redactor = PiiRedactor(config.phone_region, phone_regions=config.phone_regions)
        self.brand_redactors = {
            brand: PiiRedactor(config.phone_region, phone_regions=regions)
            for brand, regions in (config.phone_regions_by_brand or {}).items()
        }
        self.version = f"{ENCODER_NAME}/{self.sentiment.version}/taxonomy-v{self.taxonomy.version}"
        self.encoder_batch_size = config.encoder_batch_size

    def touchpoints_for(self, brand: str | None) -> TouchpointTagger:
        """The brand's taxonomy pack (settings `taxonomy_packs`), else the default one."""
        return self.brand_touchpoints.get(brand, self.touchpoints) if brand else self.touchpoints

    def enrich(
        self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None,
        brands: Sequence[str | None] | None = None,
    ) -> list[Enrichment]:  # fmt: skip
        """Enrichments in input order; ``brands`` picks each text's taxonomy pack and phone regions."""
        hints = list(hints) if hints is not None else [None] * len(texts)
        brands = list(brands) if brands is not None else [None] * len(texts)
        redactions = [self.brand_redactors.get(b, self.redactor).redact(t) for t, b in zip(texts, brands)]
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
        tags = self._tag_by_brand(embeddings, hints, brands)
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

    def _tag_by_brand(
        self, embeddings: np.ndarray, hints: list[str | None], brands: list[str | None]
    ) -> list[tuple[list[str], str]]:
        """Touchpoints per text, each group of rows through its brand's tagger."""
        if not self.brand_touchpoints:
            return self.touchpoints.tag(embeddings, hints)
        out: list[tuple[list[str], str]] = [([], "unknown")] * len(hints)
        groups: dict[int, tuple[TouchpointTagger, list[int]]] = {}
        for i, brand in enumerate(brands):
            tagger = self.touchpoints_for(brand)
            groups.setdefault(id(tagger), (tagger, []))[1].append(i)
        for tagger, rows in groups.values():
            for i, tagged in zip(rows, tagger.tag(embeddings[rows], [hints[i] for i in rows])):
                out[i] = tagged
        return out
