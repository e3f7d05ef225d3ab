"""The quantised encoder (ONNX Runtime int8) against torch, on every held-out set the card scores.

The int8 path is the product's: the enricher's own encoder, then its recheck
(texts whose sentiment decision is within ``recheck_margin`` are encoded again
exactly, models/onnx_encoder.py). Taggers read the int8 sentence vectors: the
emotion and generic-touchpoint thresholds are the calibrated ones, each pack's
thresholds are calibrated at load on the pack's examples as the int8 encoder
reads them. The verdict (is int8 within :data:`TOLERANCE` of torch everywhere)
is what decides whether int8 may be the default backend.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from touchpoint.models import datasets
from touchpoint.models.cache import encode_cached
from touchpoint.models.enricher import Enricher, EnricherConfig

TOLERANCE = 0.01  # the largest loss on any held-out set at which int8 may be the default
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)  # recheck margins the card shows the trade-off for


def recheck_tradeoff(torch_model: Enricher, int8: Enricher, data_dir: Path, cache_dir: Path | None) -> list[dict]:
    """On the validation texts (part of train, never a test split): per recheck margin, the share of texts an
    int8 enricher re-encodes and how often its label then equals torch's (a re-encoded text gets torch's)."""
    from touchpoint.models.train import FINETUNE_SETS

    texts = [r.text for name in FINETUNE_SETS for r in datasets.load(name, data_dir, split="train")
             if datasets.is_validation(r.text)]  # fmt: skip
    exact = [r.label for r in torch_model.sentiment.predict_texts(texts, encode_cached(torch_model.encoder, texts, cache_dir))]
    quantised = int8.sentiment.predict_texts(texts, encode_cached(int8.encoder, texts, cache_dir))
    margins = int8.sentiment.decision_margins(quantised)
    rows = []
    for margin in MARGINS:
        again = margins < margin
        equal = [a == (b.label if not r else a) for a, b, r in zip(exact, quantised, again)]
        rows.append({"margin": margin, "n": len(texts), "rechecked": float(again.mean()),
                     "agreement": sum(equal) / len(texts)})  # fmt: skip
    return rows


def labels_as_served(enricher: Enricher, texts: Sequence[str], cache_dir: Path | None) -> tuple[list[str], int]:
    """Sentiment labels through the enricher's encoder and its recheck; and how many texts were re-encoded."""
    clean = list(texts)
    encoded = encode_cached(enricher.encoder, clean, cache_dir)
    first = enricher.sentiment.predict_texts(clean, encoded)
    before = enricher.rechecked
    _, results = enricher.recheck(clean, encoded, first, None)  # type: ignore[arg-type]
    return [r.label for r in results], enricher.rechecked - before


def evaluate_quantised(
    report: Any, config: EnricherConfig, data_dir: Path, cache_dir: Path | None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:  # fmt: skip
    """Rows per held-out sentiment set, the slice, emotion, touchpoints and each pack: torch's score (from
    ``report``, the same run), int8's, and the agreement of the labels."""
    from touchpoint.models.cs_slice import build_slice
    from touchpoint.models.evaluate import SENTIMENT_EVAL_SETS, labels_of, score
    from touchpoint.models.pack_eval import evaluate_packs
    from touchpoint.models.tagging_eval import evaluate_tagging

    progress("int8 encoder: export")
    torch_model = Enricher(replace(config, encoder_backend="torch"))
    int8 = Enricher(replace(config, encoder_backend="onnx-int8"))
    rows: list[dict[str, Any]] = []
    named = [(name, datasets.load(name, data_dir, split="test")) for name in SENTIMENT_EVAL_SETS]
    for name, labelled in [*named, ("customer-service slice", build_slice(data_dir))]:
        progress(f"int8 encoder: {name}")
        texts, gold = [r.text for r in labelled], [r.label for r in labelled]
        exact = [r.label for r in labels_of(torch_model, texts, cache_dir)]
        quantised, rechecked = labels_as_served(int8, texts, cache_dir)
        rows.append({
            "set": name, "kind": "sentiment macro-F1", "n": len(texts),
            "torch": score(gold, exact).macro_f1, "int8": score(gold, quantised).macro_f1,
            "agreement": sum(a == b for a, b in zip(exact, quantised)) / len(texts), "rechecked": rechecked,
        })  # fmt: skip
    progress("int8 encoder: tagging")
    tagging = evaluate_tagging(int8, data_dir, cache_dir)
    for kind in ("emotion", "touchpoint"):
        if tagging and report.tagging:
            rows.append({"set": f"cx_labelled test ({kind})", "kind": f"{kind} micro-F1", "n": tagging[kind]["n"],
                         "torch": report.tagging[kind]["micro_f1"], "int8": tagging[kind]["micro_f1"]})  # fmt: skip
    by_pack = {p["pack"]: p for p in report.packs}
    for pack in evaluate_packs(int8):
        if pack["pack"] in by_pack:
            rows.append({"set": f"pack {pack['pack']}", "kind": "touchpoint micro-F1", "n": pack["n"],
                         "torch": by_pack[pack["pack"]]["pack_scores"]["micro_f1"],
                         "int8": pack["pack_scores"]["micro_f1"]})  # fmt: skip
    worst = min(rows, key=lambda r: r["int8"] - r["torch"])
    progress("int8 encoder: recheck margins on validation")
    return {"rows": rows, "margins": recheck_tradeoff(torch_model, int8, data_dir, cache_dir),
            "margin": int8.encoder.recheck_margin, "model_file": int8.encoder.file.name,  # type: ignore[union-attr]
            "within_tolerance": worst["int8"] - worst["torch"] >= -TOLERANCE, "worst": worst, "tolerance": TOLERANCE}
