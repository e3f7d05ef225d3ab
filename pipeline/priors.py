"""`touchpoint train priors --brand B`: a brand's sentiment label mix, estimated from its own unlabelled texts.

The texts are the brand's stored signals (newest first, redacted as stored) or a
JSONL file of objects with ``text``. The enricher reads them exactly as it reads
live text (redaction, language gate, one encoder pass), EM re-estimates the
label prior (models/adaptation.py), a decision bias is chosen for macro-F1 on
the shifted posteriors, and both are saved for the brand in the priors file
that the enricher applies to that brand's texts from then on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from touchpoint.core.settings import Settings
from touchpoint.models.adaptation import MIN_TEXTS, BrandPrior, Estimate, estimate_prior, save_prior, shift_for
from touchpoint.models.enricher import Enricher
from touchpoint.pipeline.enrichment import enricher_config, sentiment_priors_path
from touchpoint.pipeline.store import Store

MAX_TEXTS = 5000  # EM's estimate settles long before this; more only costs encoder time


class NotEnoughTexts(ValueError):
    """Too few readable texts for a prior worth applying; the message says how many are needed."""


@dataclass(frozen=True)
class PriorResult:
    brand: str
    texts: int
    source_prior: tuple[float, float, float]
    estimate: Estimate
    saved: BrandPrior
    path: Path


def stored_texts(store: Store, brand: str, limit: int = MAX_TEXTS) -> list[str]:
    """The brand's newest stored texts that sentiment scored (one row per signal)."""
    rows = store.query(
        "SELECT text_redacted AS text FROM {db}.signals FINAL WHERE brand = {brand:String} "
        "AND text_redacted IS NOT NULL AND sentiment_label IN ('negative', 'neutral', 'positive') "
        "ORDER BY occurred_at DESC, signal_id LIMIT {limit:UInt32}",
        {"brand": brand, "limit": limit},
    )
    return [row["text"] for row in rows]


def file_texts(path: Path, limit: int = MAX_TEXTS) -> list[str]:
    """The ``text`` of each JSONL object (blank lines and objects without text are skipped)."""
    texts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number} is not JSON ({exc.msg}); one object with a \"text\" per line") from exc
            if isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip():
                texts.append(obj["text"])
            if len(texts) >= limit:
                break
    return texts


def estimate_brand_prior(settings: Settings, brand: str, texts: list[str], source: str,
                         enricher: Enricher | None = None) -> PriorResult:  # fmt: skip
    """Run EM on the texts sentiment reads and save the brand's prior; raises NotEnoughTexts below MIN_TEXTS."""
    enricher = enricher or Enricher(enricher_config(settings))
    source_prior = enricher.sentiment.source_prior
    if source_prior is None:
        raise ValueError(f"sentiment model {enricher.sentiment.version} has no calibrated source prior: "
                         "brand priors need the packaged model (unset TOUCHPOINT_SENTIMENT_MODEL)")  # fmt: skip
    probabilities = enricher.sentiment_probabilities(texts)
    if len(probabilities) < MIN_TEXTS:
        raise NotEnoughTexts(
            f"brand {brand!r}: {len(probabilities)} texts sentiment can read ({source}); a prior needs at least "
            f"{MIN_TEXTS}: import more of the brand's feedback or pass a JSONL file with --file"
        )
    estimate = estimate_prior(probabilities, source_prior)
    path = sentiment_priors_path(settings)
    shift = shift_for(probabilities, source_prior, estimate.prior)
    saved = save_prior(path, brand, shift, len(probabilities), enricher.prior_model, source)
    return PriorResult(brand, len(probabilities), source_prior, estimate, saved, path)
