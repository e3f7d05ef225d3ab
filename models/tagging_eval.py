"""Emotion and touchpoint tagging: calibrate on the dev part, measure on the test part.

The labelled set is models/labels/cx_labelled.jsonl (real texts, labelled by the
project; see models/labels/README.md). `touchpoint train tagging` calls
:func:`calibrate` on ``part == "dev"`` and writes models/artifacts/tagging.json;
`touchpoint eval` calls :func:`evaluate_tagging` on ``part == "test"`` only.
Both run on whatever encoder and sentiment model the enricher loaded, so after
a new encoder `touchpoint train tagging` recalibrates everything.

Emotions: an emotion with at least :data:`MIN_DEV_POSITIVES` dev examples gets
the threshold with the best dev F1. A rarer one (confusion and urgency have a
handful) would get a threshold fitted to a few texts — in practice too high to
ever fire on a real stream — so it gets the threshold at which it fires on its
dev base rate of unlabelled real texts instead (the *train* splits of the
packaged sentiment sets, read without their labels: :data:`REFERENCE_SETS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from touchpoint.models.emotion import DEFAULT_THRESHOLD, best_threshold, tagging_artifact_path, thresholds_from_phrases
from touchpoint.models.sentiment import normalise_text
from touchpoint.models.touchpoint_calibration import search_thresholds, thresholds_from_examples
from touchpoint.models.touchpoints import DEFAULT_MARGIN, DEFAULT_MIN_SIMILARITY, OTHER, TouchpointTagger, ranked_tags

MIN_DEV_POSITIVES = 10
MIN_BASE_RATE = 0.005
REFERENCE_SETS = ("vader_tweets", "vader_amazon", "uci_yelp", "uci_amazon")
FIRING_SET = "vader_tweets"  # its *test* split: how often each emotion fires on a real stream

METHOD = (
    "**Labelled set**: `models/labels/cx_labelled.jsonl`, {n} real texts (the demo samples plus test-split texts "
    "picked to cover rare emotions), labelled by the project for emotions and touchpoints (guidelines in "
    "`models/labels/README.md`), split by a hash into *dev* ({dev}) and *test* ({test}). "
    "**Emotion**: cosine similarity of the text's sentence vector to a prototype per emotion (mean of the phrases "
    "in the brand-editable `models/emotions.yaml`), gated by the sentiment head (the emotion's polar class at "
    "least as likely as the opposite one); one threshold per emotion: best F1 on dev where dev has at least "
    f"{MIN_DEV_POSITIVES} examples, else the dev base rate matched on unlabelled real texts (train splits of "
    f"{', '.join(REFERENCE_SETS)}). **Touchpoints**: similarity to each taxonomy entry's prototype "
    "(description + examples); a floor and a margin below the best tag calibrated on dev for micro-F1; nothing "
    "above the floor gives `other`. Calibration: `touchpoint train tagging` → `models/artifacts/tagging.json` "
    "({calibration}). Numbers below are on the test part only; `other` counts as a touchpoint label."
)


def labels_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("labels", "cx_labelled.jsonl")))


def load_labelled(part: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    file = path or labels_path()
    if not file.is_file():
        return []
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if part is None or r.get("part") == part]


@dataclass
class Signals:
    """What the taggers see, computed exactly as the enricher computes it."""

    embeddings: np.ndarray
    emotion_sim: np.ndarray
    emotion_allowed: np.ndarray


def signals(enricher: Any, texts: Sequence[str], cache_dir: Path | None = None) -> Signals:
    from touchpoint.models.cache import encode_cached

    clean = [normalise_text(enricher.redactor.redact(t).text) for t in texts]
    encoded = encode_cached(enricher.encoder, clean, cache_dir)
    sentiments = enricher.sentiment.predict_texts(clean, encoded)
    encoded, sentiments = enricher.recheck(clean, encoded, sentiments, None)  # a quantised encoder's close calls
    allowed = enricher.emotions.allowed([s.probabilities for s in sentiments])
    return Signals(encoded.sentence, enricher.emotions.similarities(encoded.sentence), allowed)


def predict_emotions(names: Sequence[str], s: Signals, thresholds: np.ndarray) -> list[list[str]]:
    hits = (s.emotion_sim >= thresholds) & s.emotion_allowed
    return [[names[j] for j in range(len(names)) if row[j]] for row in hits]


def predict_touchpoints(tagger: TouchpointTagger, embeddings: np.ndarray, floor: float, margin: float) -> list[list[str]]:
    ids = tagger.taxonomy.ids
    return [[ids[i] for i in ranked_tags(row, floor, margin, tagger.max_tags)] or [OTHER]
            for row in tagger.similarities(embeddings)]  # fmt: skip


def _binary(sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    return np.array([[label in s for label in labels] for s in sets], dtype=int).reshape(len(sets), len(labels))


def multilabel_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]) -> dict:
    y, p = _binary(gold, labels), _binary(pred, labels)
    precision, recall, f1, support = precision_recall_fscore_support(y, p, average=None, zero_division=0)
    _, _, micro, _ = precision_recall_fscore_support(y, p, average="micro", zero_division=0)
    present = support > 0
    fired = p.sum(axis=0)
    return {
        "n": len(gold),
        "micro_f1": float(micro),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "exact": float(np.mean([set(g) == set(q) for g, q in zip(gold, pred)])),
        "per_label": {
            label: {"support": int(s), "precision": float(pr), "recall": float(r), "f1": float(f), "predicted": int(k)}
            for label, pr, r, f, s, k in zip(labels, precision, recall, f1, support, fired) if s > 0 or k > 0
        },
    }  # fmt: skip


def reference_texts(data_dir: Path | None) -> list[str]:
    """Unlabelled real texts (train splits of REFERENCE_SETS; their labels are not read)."""
    from touchpoint.models import datasets

    if data_dir is None:
        return []
    try:
        return [r.text for name in REFERENCE_SETS for r in datasets.load(name, data_dir, split="train")]
    except FileNotFoundError:
        return []


def calibrate_emotions(
    enricher: Any, rows: Sequence[dict[str, Any]], reference: Signals | None
) -> tuple[dict[str, float], dict[str, str]]:
    """Per-emotion thresholds and how each was chosen."""
    names = enricher.emotions.names
    dev = signals(enricher, [r["text"] for r in rows])
    thresholds, how = {}, {}
    for j, name in enumerate(names):
        gold = np.array([name in r["emotions"] for r in rows])
        if gold.sum() >= MIN_DEV_POSITIVES or reference is None:
            thresholds[name] = best_threshold(dev.emotion_sim[:, j], gold, dev.emotion_allowed[:, j])
            how[name] = f"dev F1 ({int(gold.sum())} examples)"
            continue
        rate = max(float(gold.mean()), MIN_BASE_RATE)
        eligible = np.where(reference.emotion_allowed[:, j], reference.emotion_sim[:, j], -1.0)
        thresholds[name] = round(float(np.quantile(eligible, 1 - rate)), 3)
        how[name] = f"dev base rate {rate:.1%} ({int(gold.sum())} examples) on {len(eligible)} unlabelled texts"
    return thresholds, how


def calibrate(
    enricher: Any, rows: Sequence[dict[str, Any]] | None = None, data_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Emotion thresholds and the default taxonomy's floor/margin on the dev part; offsets for uncalibrated files."""
    rows = list(rows) if rows is not None else load_labelled("dev")
    texts = reference_texts(data_dir)
    reference = signals(enricher, texts, cache_dir) if texts else None
    thresholds, how = calibrate_emotions(enricher, rows, reference)
    from_phrases = thresholds_from_phrases(enricher.encoder, enricher.emotions.emotion_set)
    tagger = enricher.touchpoints
    dev = signals(enricher, [r["text"] for r in rows])
    floor, margin, _ = search_thresholds(tagger.similarities(dev.embeddings), [r["touchpoints"] for r in rows],
                                         tagger.taxonomy.ids, tagger.max_tags)  # fmt: skip
    from_examples = thresholds_from_examples(enricher.encoder, tagger.taxonomy, tagger.max_tags)
    calibrated_on = f"models/labels/cx_labelled.jsonl part=dev ({len(rows)} texts)"
    return {
        "emotion_thresholds": thresholds,
        "emotion_threshold_method": how,
        "emotions_fingerprint": enricher.emotions.emotion_set.fingerprint,
        # real texts sit lower than phrases: applied to emotions and taxonomies calibrated without labels
        "emotion_phrase_offset": round(float(np.mean([thresholds[n] - from_phrases[n] for n in thresholds])), 3),
        "touchpoint_example_offset": round(floor - from_examples.min_similarity, 3) if from_examples else 0.0,
        "touchpoint_min_similarity": floor,
        "touchpoint_margin": margin,
        "taxonomies": {tagger.taxonomy.fingerprint: {
            "name": tagger.taxonomy.name, "min_similarity": floor, "margin": margin, "calibrated_on": calibrated_on,
        }},  # fmt: skip
        "calibrated_on": calibrated_on,
        "taxonomy_version": tagger.taxonomy.version,
        "encoder": Path(enricher.encoder.path).name,
    }


def calibrate_brand_taxonomy(enricher: Any, spec: str, rows: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
    """A brand's labels (``text`` + ``touchpoints``) for its own taxonomy file: the floor and margin it stores."""
    from touchpoint.models.touchpoints import Taxonomy

    tagger = TouchpointTagger(enricher.encoder, Taxonomy.load(spec), max_tags=enricher.touchpoints.max_tags)
    unknown = sorted({t for r in rows for t in r["touchpoints"]} - {*tagger.taxonomy.ids, OTHER})
    if unknown:
        raise ValueError(f"{source}: touchpoint {unknown[0]!r} is not in {spec}; use its ids or `other`")
    embedded = signals(enricher, [r["text"] for r in rows])
    floor, margin, score = search_thresholds(tagger.similarities(embedded.embeddings),
                                             [r["touchpoints"] for r in rows], tagger.taxonomy.ids, tagger.max_tags)  # fmt: skip
    return {tagger.taxonomy.fingerprint: {"name": tagger.taxonomy.name, "min_similarity": floor, "margin": margin,
                                          "calibrated_on": f"{source} ({len(rows)} texts, micro-F1 {score:.2f})"}}  # fmt: skip


def write_calibration(
    enricher: Any, out: Path | None = None, data_dir: Path | None = None, cache_dir: Path | None = None
) -> Path:
    """Recalibrate everything on the loaded encoder; brand calibrations already in the file are kept."""
    out = out or tagging_artifact_path()
    previous = json.loads(out.read_text()) if out.is_file() else {}
    result = calibrate(enricher, data_dir=data_dir, cache_dir=cache_dir)
    kept = {k: v for k, v in previous.get("brand_taxonomies", {}).items()}
    result["taxonomies"].update(kept)
    result["brand_taxonomies"] = kept
    out.write_text(json.dumps(result, indent=1) + "\n")
    return out


def add_brand_calibration(enricher: Any, spec: str, labels: Path, out: Path | None = None) -> tuple[Path, dict]:
    """`touchpoint train tagging --labels FILE --taxonomy PACK`: store a brand's calibration next to the rest."""
    out = out or tagging_artifact_path()
    rows = load_labelled(path=labels)
    if not rows:
        raise ValueError(f"{labels}: no labelled rows; one JSON object per line with `text` and `touchpoints`")
    entry = calibrate_brand_taxonomy(enricher, spec, rows, str(labels))
    data = json.loads(out.read_text()) if out.is_file() else {}
    data.setdefault("taxonomies", {}).update(entry)
    data.setdefault("brand_taxonomies", {}).update(entry)
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out, next(iter(entry.values()))


def load_calibration_methods() -> dict[str, str]:
    from touchpoint.models.emotion import load_calibration

    return load_calibration().get("emotion_threshold_method", {})


def emotion_firing(enricher: Any, data_dir: Path | None, cache_dir: Path | None) -> dict[str, Any]:
    """How often each emotion fires on a real stream (the test split of FIRING_SET; labels not used)."""
    from touchpoint.models import datasets

    if data_dir is None:
        return {}
    try:
        texts = [r.text for r in datasets.load(FIRING_SET, data_dir, split="test")]
    except FileNotFoundError:
        return {}
    s = signals(enricher, texts, cache_dir)
    fired = ((s.emotion_sim >= enricher.emotions.thresholds) & s.emotion_allowed).sum(axis=0)
    return {"set": f"{FIRING_SET} test split", "n": len(texts),
            "fired": {n: int(k) for n, k in zip(enricher.emotions.names, fired)}}  # fmt: skip


def evaluate_tagging(enricher: Any, data_dir: Path | None = None, cache_dir: Path | None = None) -> dict[str, Any]:
    """Scores on the test part with the enricher's calibrated settings, and with the uncalibrated defaults."""
    rows, dev = load_labelled("test"), load_labelled("dev")
    if not rows:
        return {}
    names = enricher.emotions.names
    s = signals(enricher, [r["text"] for r in rows])
    gold_e = [r["emotions"] for r in rows]
    gold_t = [r["touchpoints"] for r in rows]
    emotion = multilabel_scores(gold_e, predict_emotions(names, s, enricher.emotions.thresholds), names)
    base_e = multilabel_scores(gold_e, predict_emotions(names, s, np.full(len(names), DEFAULT_THRESHOLD)), names)
    emotion.update(baseline_name=f"one threshold {DEFAULT_THRESHOLD} for all emotions",
                   baseline_micro_f1=base_e["micro_f1"], firing=emotion_firing(enricher, data_dir, cache_dir))  # fmt: skip
    methods = load_calibration_methods()
    if methods:
        emotion["notes"] = "Threshold per emotion chosen by: " + "; ".join(f"{n}: {m}" for n, m in methods.items()) + "."
    tp = enricher.touchpoints
    labels_t = (*tp.taxonomy.ids, OTHER)
    touchpoint = multilabel_scores(gold_t, predict_touchpoints(tp, s.embeddings, tp.min_similarity, tp.margin), labels_t)
    base_t = multilabel_scores(gold_t, predict_touchpoints(tp, s.embeddings, DEFAULT_MIN_SIMILARITY, DEFAULT_MARGIN), labels_t)
    touchpoint.update(baseline_name=f"floor {DEFAULT_MIN_SIMILARITY}, no margin", baseline_micro_f1=base_t["micro_f1"])
    other_gold = sum(g == [OTHER] for g in gold_t)
    touchpoint["notes"] = (
        f"{other_gold} of {len(rows)} test texts are gold `other` (mostly personal tweets); precision of "
        f"`other` is the share of texts we left untagged that truly are not about a touchpoint. Calibrated floor "
        f"{tp.min_similarity:.2f}, margin {tp.margin:.2f}."
    )
    calibration = (
        "emotion thresholds " + ", ".join(f"{n} {t:.2f}" for n, t in zip(names, enricher.emotions.thresholds))
        + f"; touchpoint floor {tp.min_similarity:.2f}, margin {tp.margin:.2f}"
    )  # fmt: skip
    method = METHOD.format(n=len(rows) + len(dev), dev=len(dev), test=len(rows), calibration=calibration)
    return {"method": method, "emotion": emotion, "touchpoint": touchpoint}
