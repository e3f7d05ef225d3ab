"""All enrichment for a batch of texts: redact, detect language, embed once, then classify.

Blocking and CPU-bound: async callers run :meth:`Enricher.enrich` in an
executor. The encoder runs once per text; every head reuses the embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from touchpoint.models.emotion import EmotionTagger
from touchpoint.models.encoder import ENCODER_NAME, Encoded, SentenceEncoder
from touchpoint.models.language import detect_language
from touchpoint.models.pii import PiiRedactor
from touchpoint.models.sentiment import SentimentHead, normalise_text
from touchpoint.models.touchpoints import Taxonomy, TouchpointTagger, resolve_taxonomy

if TYPE_CHECKING:
    from touchpoint.models.onnx_encoder import OnnxEncoder


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
    # Who runs the encoder: torch, or ONNX Runtime on a file this project exports from the same weights
    # (models/onnx_encoder.py): onnx-fp32 (same numbers) or onnx-int8 (quantised; see the model card).
    encoder_backend: str = "torch"
    onnx_dir: str | None = None  # where exported ONNX files live; None: .touchpoint/models
    inference_threads: int = 0  # ONNX Runtime's intra-op threads; 0: one per core


def load_encoder(config: EnricherConfig) -> "SentenceEncoder | OnnxEncoder":
    """The encoder the config names; an ONNX backend exports the torch encoder's weights on first use."""
    encoder = SentenceEncoder(config.encoder_path, max_tokens=config.max_tokens)
    if config.encoder_backend == "torch":
        return encoder
    precision = config.encoder_backend.removeprefix("onnx-")
    if config.encoder_backend not in ("onnx-fp32", "onnx-int8"):
        raise ValueError(f"encoder backend {config.encoder_backend!r} is not torch, onnx-fp32 or onnx-int8")
    from touchpoint.models.onnx_encoder import OnnxEncoder

    folder = Path(config.onnx_dir) if config.onnx_dir else Path(".touchpoint") / "models"
    return OnnxEncoder.from_torch(encoder, folder, precision, config.inference_threads)  # type: ignore[arg-type]


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
        self.encoder = load_encoder(config)
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
        backend = "" if config.encoder_backend == "torch" else f"+{config.encoder_backend}"
        self.version = f"{ENCODER_NAME}{backend}/{self.sentiment.version}/taxonomy-v{self.taxonomy.version}"
        self.encoder_batch_size = config.encoder_batch_size
        self.rechecked = 0  # texts a quantised encoder handed to the exact one (:meth:`_recheck`)

    def touchpoints_for(self, brand: str | None) -> TouchpointTagger:
        """The brand's taxonomy pack (settings `taxonomy_packs`), else the default one."""
        return self.brand_touchpoints.get(brand, self.touchpoints) if brand else self.touchpoints

    def enrich(
        self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None,
        brands: Sequence[str | None] | None = None,
    ) -> list[Enrichment]:  # fmt: skip
        """Enrichments in input order; ``brands`` picks each text's taxonomy pack and phone regions.

        A signal without text (a bare score) never reaches a model: only its
        touchpoint hint is read, so score-only batches cost next to nothing.
        """
        hints = list(hints) if hints is not None else [None] * len(texts)
        brands = list(brands) if brands is not None else [None] * len(texts)
        reading = [i for i, text in enumerate(texts) if text and text.strip()]
        results = self._without_text(hints, brands) if len(reading) < len(texts) else [None] * len(texts)
        if reading:
            read = self._with_text([texts[i] for i in reading], [hints[i] for i in reading], [brands[i] for i in reading])
            for i, enrichment in zip(reading, read):
                results[i] = enrichment
        return results  # type: ignore[return-value]

    def _without_text(self, hints: list[str | None], brands: list[str | None]) -> list[Enrichment]:
        """Score-only signals: the hint's touchpoint (and stage) when it names one, nothing else."""
        tags = self._tag_by_brand(np.zeros((len(hints), self.encoder.dim), dtype=np.float32), hints, brands)
        return [
            Enrichment(text_redacted=None, pii_found=[], language="und", sentiment_label=None, sentiment_score=None,
                       emotions=[], touchpoints=tags[i][0] if hints[i] else [], journey_stage=tags[i][1] if hints[i] else "unknown")
            for i in range(len(hints))
        ]  # fmt: skip

    def _with_text(self, texts: list[str], hints: list[str | None], brands: list[str | None]) -> list[Enrichment]:
        redactions = [self.brand_redactors.get(b, self.redactor).redact(t) for t, b in zip(texts, brands)]
        clean = [r.text for r in redactions]
        normalised = [normalise_text(text) for text in clean]
        encoded = self.encoder.encode_rich(normalised, batch_size=self.encoder_batch_size)
        sentiments = self.sentiment.predict_texts(normalised, encoded)
        encoded, sentiments = self._recheck(normalised, encoded, sentiments)
        embeddings = encoded.sentence
        emotions = self.emotions.tag(embeddings, [s.probabilities for s in sentiments])
        tags = self._tag_by_brand(embeddings, hints, brands)
        return [
            Enrichment(
                text_redacted=clean[i],
                pii_found=list(redactions[i].found),
                language=detect_language(clean[i]),
                sentiment_label=sentiments[i].label,
                sentiment_score=round(sentiments[i].score, 4),
                emotions=emotions[i],
                touchpoints=tags[i][0],
                journey_stage=tags[i][1],
            )
            for i in range(len(texts))
        ]

    def _recheck(self, texts: list[str], encoded: Encoded, sentiments: list[Any]) -> tuple[Encoded, list[Any]]:
        """With a quantised encoder, texts whose sentiment decision is close (margin under the encoder's
        ``recheck_margin``) are encoded again exactly (fp32, same weights) and classified again, so the
        quantisation noise cannot flip them (models/onnx_encoder.py)."""
        exact = getattr(self.encoder, "exact", None)
        if exact is None or not isinstance(self.sentiment, SentimentHead):
            return encoded, sentiments
        margins = self.sentiment.decision_margins(sentiments)
        rows = [i for i, margin in enumerate(margins) if margin < self.encoder.recheck_margin]
        if not rows:
            return encoded, sentiments
        again = exact.encode_rich([texts[i] for i in rows], batch_size=self.encoder_batch_size)
        encoded = Encoded(encoded.sentence.copy(), encoded.layer_means.copy(), encoded.last_max.copy())
        encoded.sentence[rows], encoded.layer_means[rows], encoded.last_max[rows] = again.sentence, again.layer_means, again.last_max
        sentiments = list(sentiments)
        for i, result in zip(rows, self.sentiment.predict_texts([texts[i] for i in rows], again)):
            sentiments[i] = result
        self.rechecked += len(rows)
        return encoded, sentiments

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
