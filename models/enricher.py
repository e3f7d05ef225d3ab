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
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from touchpoint.models.adaptation import BrandPrior, Shift, load_priors
from touchpoint.models.emotion import EmotionTagger
from touchpoint.models.encoder import Encoded, SentenceEncoder, TunedLayers
from touchpoint.models.language import detect_language
from touchpoint.models.pii import PiiRedactor, Redaction
from touchpoint.models.sentiment import UNSCORED, SentimentHead, normalise_text
from touchpoint.models.touchpoints import Taxonomy, TouchpointTagger, resolve_taxonomy

log = logging.getLogger(__name__)

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
    sentiment_reason: str | None = None  # why sentiment_label is "unknown" (a language the model cannot read)


def has_text(text: str | None) -> bool:
    """Whether a signal has text for the models to read (a bare score has none)."""
    return bool(text and text.strip())


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
    sentiment_priors_path: str | None = None  # per-brand label priors (models/adaptation.py); None: none applied
    # Who runs the encoder: torch, or ONNX Runtime on a file this project exports from the same weights
    # (models/onnx_encoder.py): onnx-fp32 (same numbers) or onnx-int8 (quantised; see the model card).
    encoder_backend: str = "torch"
    onnx_dir: str | None = None  # where exported ONNX files live; None: .touchpoint/models
    inference_threads: int = 0  # ONNX Runtime's intra-op threads; 0: one per core


def load_encoder(config: EnricherConfig, tuned: TunedLayers | None = None) -> "SentenceEncoder | OnnxEncoder":
    """The encoder the config names, with the sentiment artifact's fine-tuned layers (``tuned``); an ONNX
    backend exports the torch encoder's weights, tuned layers included, on first use."""
    encoder = SentenceEncoder(config.encoder_path, max_tokens=config.max_tokens, tuned=tuned)
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
        self.sentiment = load_sentiment(config)
        self.encoder = load_encoder(config, self.sentiment.tuned)
        self.sentiment_version = f"{self.encoder.name}/{self.sentiment.version}"
        # what a brand prior belongs to: the weights and the head, whichever backend runs them (int8 labels
        # equal torch's on 99.9% of held-out texts, model card), so a prior survives a backend change
        self.prior_model = f"{self.encoder.name.removesuffix('+' + self.encoder.backend)}/{self.sentiment.version}"
        priors_file = Path(config.sentiment_priors_path) if config.sentiment_priors_path else None
        self.priors = self._usable_priors(load_priors(priors_file))
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
        self.version = f"{self.sentiment_version}/taxonomy-v{self.taxonomy.version}"
        self.encoder_batch_size = config.encoder_batch_size
        self.rechecked = 0  # texts a quantised encoder handed to the exact one (:meth:`recheck`)

    def _usable_priors(self, priors: dict[str, BrandPrior]) -> dict[str, Shift]:
        """Brand priors estimated with this sentiment model; a prior from another model is skipped, with the fix."""
        if priors and self.sentiment.source_prior is None:
            log.warning("sentiment priors ignored: %s has no calibrated source prior", self.sentiment.version)
            return {}
        usable = {}
        for brand, entry in priors.items():
            if entry.model_version == self.prior_model:
                usable[brand] = entry.shift
            else:
                log.warning("sentiment prior of brand %r was estimated with %s, not %s: re-run "
                            "`touchpoint train priors --brand %s`",
                            brand, entry.model_version, self.prior_model, brand)  # fmt: skip
        return usable

    def touchpoints_for(self, brand: str | None) -> TouchpointTagger:
        """The brand's taxonomy pack (settings `taxonomy_packs`), else the default one."""
        return self.brand_touchpoints.get(brand, self.touchpoints) if brand else self.touchpoints

    def _read(self, texts: Sequence[str | None], brands: list[str | None]) -> "_Read":
        """What every head starts from: redacted text, its language, whether sentiment may read it, one encoder pass."""
        redactions = [self.brand_redactors.get(b, self.redactor).redact(t) for t, b in zip(texts, brands)]
        clean = [r.text for r in redactions]
        has_text = [bool(text and text.strip()) for text in clean]
        languages = [detect_language(text) if present else "und" for text, present in zip(clean, has_text)]
        unscored = [self.sentiment.unscored_reason(code) if present else None for code, present in zip(languages, has_text)]
        normalised = [normalise_text(text) if text else text for text in clean]
        encoded = self.encoder.encode_rich(normalised, batch_size=self.encoder_batch_size)
        read = [present and reason is None for present, reason in zip(has_text, unscored)]
        return _Read(redactions, clean, has_text, languages, unscored, normalised, encoded, read)

    def sentiment_probabilities(
        self, texts: Sequence[str | None], brands: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Calibrated sentiment probabilities (no brand prior) of the texts sentiment reads; the input of
        prior estimation (models/adaptation.py). Texts without text or in unscored languages are left out."""
        seen = self._read(texts, list(brands) if brands is not None else [None] * len(texts))
        results = self.sentiment.predict_texts(seen.normalised, seen.encoded)
        return np.array([r.probabilities for r, ok in zip(results, seen.read) if ok], dtype=np.float32).reshape(-1, 3)

    def enrich(
        self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None,
        brands: Sequence[str | None] | None = None,
    ) -> list[Enrichment]:  # fmt: skip
        """Enrichments in input order; ``brands`` picks each text's taxonomy pack, phone regions and sentiment prior.

        A signal without text (a bare score) never reaches a model: only its
        touchpoint hint is read, so score-only batches cost next to nothing.
        """
        hints = list(hints) if hints is not None else [None] * len(texts)
        brands = list(brands) if brands is not None else [None] * len(texts)
        reading = [i for i, text in enumerate(texts) if has_text(text)]
        results = self._without_text(hints, brands) if len(reading) < len(texts) else [None] * len(texts)
        if reading:
            read = self._with_text(
                [texts[i] for i in reading], [hints[i] for i in reading], [brands[i] for i in reading]
            )
            for i, enrichment in zip(reading, read):
                results[i] = enrichment
        return results  # type: ignore[return-value]

    def _without_text(self, hints: list[str | None], brands: list[str | None]) -> list[Enrichment]:
        """Score-only signals: the hint's touchpoint (and stage) when it names one, nothing else.

        The tagger sees a zero vector here, so its answer depends on the brand and the hint alone:
        each distinct pair is tagged once (a take of bare scores is thousands of rows, a handful of pairs).
        """
        pairs = sorted({(brand or "", hint) for brand, hint in zip(brands, hints) if hint})
        tags = self._tag_by_brand(np.zeros((len(pairs), self.encoder.dim), dtype=np.float32),
                                  [hint for _, hint in pairs], [brand for brand, _ in pairs]) if pairs else []  # fmt: skip
        by_pair = dict(zip(pairs, tags))
        out = []
        for hint, brand in zip(hints, brands):
            touchpoints, stage = by_pair[(brand or "", hint)] if hint else ([], "unknown")
            out.append(Enrichment(text_redacted=None, pii_found=[], language="und", sentiment_label=None,
                                  sentiment_score=None, emotions=[], touchpoints=list(touchpoints), journey_stage=stage))  # fmt: skip
        return out

    def _with_text(self, texts: list[str], hints: list[str | None], brands: list[str | None]) -> list[Enrichment]:
        seen = self._read(texts, brands)
        priors = [self.priors.get(brand or "") for brand in brands] if self.priors else None
        sentiments = self.sentiment.predict_texts(seen.normalised, seen.encoded, priors)
        encoded, sentiments = self.recheck(seen.normalised, seen.encoded, sentiments, priors)
        embeddings = encoded.sentence
        # a text the model cannot read gets no emotion either: the gate needs a sentiment it does not have
        gate = [s.probabilities if ok else None for s, ok in zip(sentiments, seen.read)]
        emotions = self.emotions.tag(embeddings, gate)
        tags = self._tag_by_brand(embeddings, hints, brands)
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

    def recheck(
        self, texts: list[str | None], encoded: Encoded, sentiments: list[Any], priors: list[Any] | None
    ) -> tuple[Encoded, list[Any]]:
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
        again_priors = [priors[i] for i in rows] if priors is not None else None
        for i, result in zip(rows, self.sentiment.predict_texts([texts[i] for i in rows], again, again_priors)):
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
