"""Emotion and touchpoint tagging: calibrate on the dev part, measure on the test part.

The labelled set is models/labels/cx_labelled.jsonl (real texts, labelled by the
project; see models/labels/README.md). `touchpoint train tagging` calls
:func:`calibrate` on ``part == "dev"`` and writes models/artifacts/tagging.json;
`touchpoint eval` calls :func:`evaluate_tagging` on ``part == "test"`` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from touchpoint.models.emotion import DEFAULT_THRESHOLD, NAMES, tagging_artifact_path
from touchpoint.models.sentiment import normalise_text
from touchpoint.models.touchpoints import DEFAULT_MARGIN, DEFAULT_MIN_SIMILARITY, OTHER

METHOD = (
    "**Labelled set**: `models/labels/cx_labelled.jsonl`, {n} real texts (the demo samples plus test-split texts "
    "picked to cover rare emotions), labelled by the project for emotions and touchpoints (guidelines in "
    "`models/labels/README.md`), split by a hash into *dev* ({dev}) and *test* ({test}). "
    "**Emotion**: cosine similarity of the text's sentence vector to a prototype per emotion (mean of "
    "descriptive phrases, models/emotion.py), gated by the sentiment head's polarity; one threshold per "
    "emotion calibrated on dev for F1. **Touchpoints**: similarity to each taxonomy entry's prototype "
    "(description + examples, models/taxonomy.yaml); a floor and a margin below the best tag calibrated on dev "
    "for micro-F1; nothing above the floor gives `other`. Calibration: `touchpoint train tagging` → "
    "`models/artifacts/tagging.json` ({calibration}). Numbers below are on the test part only; `other` "
    "counts as a touchpoint label."
)


def labels_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("labels", "cx_labelled.jsonl")))


def load_labelled(part: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    file = path or labels_path()
    if not file.is_file():
        return []
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if part is None or r["part"] == part]


@dataclass
class _Signals:
    emotion_sim: np.ndarray
    emotion_allowed: np.ndarray
    touchpoint_sim: np.ndarray


def _signals(enricher: Any, rows: Sequence[dict[str, Any]]) -> _Signals:
    """What the taggers see, computed exactly as the enricher computes it."""
    texts = [normalise_text(enricher.redactor.redact(r["text"]).text) for r in rows]
    encoded = enricher.encoder.encode_rich(texts)
    sentiments = enricher.sentiment.predict_texts(texts, encoded)
    allowed = enricher.emotions.allowed([s.probabilities for s in sentiments])
    return _Signals(enricher.emotions.similarities(encoded.sentence), allowed,
                    enricher.touchpoints.similarities(encoded.sentence))  # fmt: skip


def _emotions(signals: _Signals, thresholds: np.ndarray) -> list[list[str]]:
    hits = (signals.emotion_sim >= thresholds) & signals.emotion_allowed
    return [[NAMES[j] for j in range(len(NAMES)) if row[j]] for row in hits]


def _touchpoints(enricher: Any, signals: _Signals, floor: float, margin: float) -> list[list[str]]:
    ids = enricher.taxonomy.ids
    out = []
    for row in signals.touchpoint_sim:
        best = row.max()
        ranked = [int(i) for i in np.argsort(-row) if row[i] >= floor and row[i] >= best - margin]
        out.append([ids[i] for i in ranked[: enricher.touchpoints.max_tags]] or [OTHER])
    return out


def _binary(sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    return np.array([[label in s for label in labels] for s in sets], dtype=int)


def multilabel_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]) -> dict:
    y, p = _binary(gold, labels), _binary(pred, labels)
    precision, recall, f1, support = precision_recall_fscore_support(y, p, average=None, zero_division=0)
    _, _, micro, _ = precision_recall_fscore_support(y, p, average="micro", zero_division=0)
    present = support > 0
    return {
        "n": len(gold),
        "micro_f1": float(micro),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "exact": float(np.mean([set(g) == set(q) for g, q in zip(gold, pred)])),
        "per_label": {
            label: {"support": int(s), "precision": float(pr), "recall": float(r), "f1": float(f)}
            for label, pr, r, f, s in zip(labels, precision, recall, f1, support) if s > 0
        },
    }  # fmt: skip


def calibrate(enricher: Any, rows: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per-emotion thresholds and the touchpoint floor/margin that maximise F1 on the dev part."""
    rows = rows if rows is not None else load_labelled("dev")
    signals = _signals(enricher, rows)
    grid = np.round(np.arange(0.15, 0.75, 0.01), 2)
    thresholds = {}
    for j, name in enumerate(NAMES):
        gold = np.array([name in r["emotions"] for r in rows])
        best, best_f1 = DEFAULT_THRESHOLD, -1.0
        for t in grid:
            pred = (signals.emotion_sim[:, j] >= t) & signals.emotion_allowed[:, j]
            tp = float((pred & gold).sum())
            f1 = 2 * tp / (pred.sum() + gold.sum()) if pred.sum() + gold.sum() else 0.0
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(t), f1
        thresholds[name] = best
    labels = (*enricher.taxonomy.ids, OTHER)
    gold_tp = [r["touchpoints"] for r in rows]
    best_tp, best_score = (DEFAULT_MIN_SIMILARITY, DEFAULT_MARGIN), -1.0
    for floor in np.round(np.arange(0.15, 0.6, 0.01), 2):
        for margin in (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 1.0):
            pred = _touchpoints(enricher, signals, float(floor), margin)
            value = multilabel_scores(gold_tp, pred, labels)["micro_f1"]
            if value > best_score + 1e-9:
                best_tp, best_score = (float(floor), float(margin)), value
    return {
        "emotion_thresholds": thresholds,
        "touchpoint_min_similarity": best_tp[0],
        "touchpoint_margin": best_tp[1],
        "calibrated_on": f"models/labels/cx_labelled.jsonl part=dev ({len(rows)} texts)",
        "taxonomy_version": enricher.taxonomy.version,
    }


def write_calibration(enricher: Any, out: Path | None = None) -> Path:
    out = out or tagging_artifact_path()
    out.write_text(json.dumps(calibrate(enricher), indent=1) + "\n")
    return out


def compare_emotion_methods(enricher: Any, rows: Sequence[dict[str, Any]], folds: int = 5) -> dict[str, dict[str, float]]:
    """Micro-F1 by k-fold cross-validation *on dev*: how the emotion method was chosen."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    texts = [normalise_text(enricher.redactor.redact(r["text"]).text) for r in rows]
    encoded = enricher.encoder.encode_rich(texts)
    probs = np.array([s.probabilities for s in enricher.sentiment.predict_texts(texts, encoded)])
    sims = enricher.emotions.similarities(encoded.sentence)
    allowed = enricher.emotions.allowed([tuple(p) for p in probs])
    gold = np.array([[n in r["emotions"] for n in NAMES] for r in rows])
    grid = np.round(np.arange(0.15, 0.75, 0.01), 2)

    def f1(y: np.ndarray, p: np.ndarray) -> float:
        total = y.sum() + p.sum()
        return float(2 * (y & p).sum() / total) if total else 0.0

    features = {"logistic regression per emotion on sentence vector + sentiment probabilities":
                np.hstack([encoded.sentence, probs])}  # fmt: skip
    out = {}
    for name in ("prototype similarity + polarity gate, thresholds per emotion", *features):
        pred = np.zeros_like(gold)
        for train, test in KFold(folds, shuffle=True, random_state=0).split(gold):
            for j in range(len(NAMES)):
                if name in features:
                    if gold[train, j].sum() >= 2:
                        model = LogisticRegression(class_weight="balanced", max_iter=2000)
                        pred[test, j] = model.fit(features[name][train], gold[train, j]).predict(features[name][test])
                    continue
                best = max(grid, key=lambda t: f1(gold[train, j], (sims[train, j] >= t) & allowed[train, j]))
                pred[test, j] = (sims[test, j] >= best) & allowed[test, j]
        out[name] = {"micro": f1(gold.ravel(), pred.ravel()),
                     **{n: f1(gold[:, j], pred[:, j]) for j, n in enumerate(NAMES)}}  # fmt: skip
    return out


def evaluate_tagging(enricher: Any) -> dict[str, Any]:
    """Scores on the test part with the enricher's calibrated settings, and with the uncalibrated defaults."""
    rows, dev = load_labelled("test"), load_labelled("dev")
    if not rows:
        return {}
    signals = _signals(enricher, rows)
    gold_e = [r["emotions"] for r in rows]
    gold_t = [r["touchpoints"] for r in rows]
    labels_t = (*enricher.taxonomy.ids, OTHER)
    emotion = multilabel_scores(gold_e, _emotions(signals, enricher.emotions.thresholds), NAMES)
    base_e = multilabel_scores(gold_e, _emotions(signals, np.full(len(NAMES), DEFAULT_THRESHOLD)), NAMES)
    emotion.update(baseline_name=f"one threshold {DEFAULT_THRESHOLD} for all emotions",
                   baseline_micro_f1=base_e["micro_f1"])  # fmt: skip
    tp = enricher.touchpoints
    touchpoint = multilabel_scores(gold_t, _touchpoints(enricher, signals, tp.min_similarity, tp.margin), labels_t)
    base_t = multilabel_scores(gold_t, _touchpoints(enricher, signals, DEFAULT_MIN_SIMILARITY, DEFAULT_MARGIN), labels_t)
    touchpoint.update(baseline_name=f"floor {DEFAULT_MIN_SIMILARITY}, no margin", baseline_micro_f1=base_t["micro_f1"])
    other_gold = sum(g == [OTHER] for g in gold_t)
    touchpoint["notes"] = (
        f"{other_gold} of {len(rows)} test texts are gold `other` (mostly personal tweets); precision of "
        f"`other` is the share of texts we left untagged that truly are not about a touchpoint. Calibrated floor "
        f"{tp.min_similarity:.2f}, margin {tp.margin:.2f}."
    )
    calibration = (
        "emotion thresholds " + ", ".join(f"{n} {t:.2f}" for n, t in zip(NAMES, enricher.emotions.thresholds))
        + f"; touchpoint floor {tp.min_similarity:.2f}, margin {tp.margin:.2f}"
    )  # fmt: skip
    method = METHOD.format(n=len(rows) + len(dev), dev=len(dev), test=len(rows), calibration=calibration)
    choice = compare_emotion_methods(enricher, dev)
    emotion["notes"] = (
        "How the method was chosen — 5-fold cross-validation on dev, micro-F1 (per-label F1): "
        + "; ".join(f"**{name}** {v['micro']:.3f} (" + ", ".join(f"{n} {v[n]:.2f}" for n in NAMES) + ")"
                    for name, v in choice.items())
        + ". The prototype method is kept: it is within noise of the trained head on micro-F1, it is the only "
        "one that finds the rare labels at all, and a brand can edit its phrases."
    )  # fmt: skip
    return {"method": method, "emotion": emotion, "touchpoint": touchpoint}
