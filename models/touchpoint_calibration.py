"""Touchpoint thresholds: from a brand's labels when it has them, else from the taxonomy's own examples.

Without labels (a bundled pack, or a brand's own file): every third example of
each touchpoint (by a hash of its text) is held out; prototypes are built from
the description and the other examples; the floor and margin that maximise
micro-F1 on the held-out examples plus off-topic texts (gold ``other``:
models/taxonomies/_off_topic.yaml and the file's own ``off_topic`` list) are
kept. The tagger then uses prototypes from *all* examples. This runs when a
tagger loads, on whatever encoder is loaded, so a fine-tuned encoder or an
edited pack never runs on stale thresholds.

With labels: `touchpoint train tagging` calibrates on labelled texts and stores
the result under the taxonomy file's fingerprint (models/artifacts/tagging.json).
"""

from __future__ import annotations

import zlib
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.datafile import read_yaml, text_list
from touchpoint.models.encoder import SentenceEncoder, prototypes
from touchpoint.models.touchpoints import (
    DEFAULT_MARGIN,
    FLOORS,
    GENERIC,
    MARGINS,
    OTHER,
    Taxonomy,
    Thresholds,
    ranked_tags,
)  # fmt: skip

HELD_OUT_EVERY = 3  # one example in three (by hash) is held out, for touchpoints with at least three


def off_topic_path() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("taxonomies", "_off_topic.yaml")))


def bundled_off_topic() -> tuple[str, ...]:
    """Texts about no brand interaction at all (models/taxonomies/_off_topic.yaml)."""
    path = off_topic_path()
    return text_list(path, read_yaml(path, "off-topic list"), "off_topic", "the off-topic list")


def off_topic_texts(taxonomy: Taxonomy) -> tuple[str, ...]:
    """Texts that are about no touchpoint: the bundled list plus the taxonomy's own ``off_topic``."""
    return (*bundled_off_topic(), *taxonomy.off_topic)


def is_held_out(example: str) -> bool:
    return zlib.crc32(b"heldout|" + example.encode()) % HELD_OUT_EVERY == 0


def micro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    tp = sum(len(set(g) & set(p)) for g, p in zip(gold, pred))
    total = sum(len(set(g)) for g in gold) + sum(len(set(p)) for p in pred)
    return 2 * tp / total if total else 0.0


def search_thresholds(
    similarities: np.ndarray, gold: Sequence[Sequence[str]], ids: Sequence[str], max_tags: int
) -> tuple[float, float, float]:
    """(floor, margin, micro-F1) that maximise micro-F1; ``other`` counts as a label. Ties keep the first."""
    best = (FLOORS[0], DEFAULT_MARGIN, -1.0)
    for floor in FLOORS:
        for margin in MARGINS:
            pred = [[ids[i] for i in ranked_tags(row, floor, margin, max_tags)] or [OTHER] for row in similarities]
            score = micro_f1(gold, pred)
            if score > best[2] + 1e-9:
                best = (floor, margin, score)
    return best


def thresholds_from_examples(
    encoder: SentenceEncoder, taxonomy: Taxonomy, max_tags: int = 3, offset: float = 0.0
) -> Thresholds | None:
    """Calibrate on held-out examples and off-topic texts; None when the file has too few examples.

    ``offset`` moves the floor to the scale of real texts, which sit lower than short examples:
    `touchpoint train tagging` measures it on the generic taxonomy (labelled floor minus this one).
    """
    groups, texts, gold = [], [], []
    for touchpoint in taxonomy.touchpoints:
        held = [e for e in touchpoint.examples if is_held_out(e)] if len(touchpoint.examples) >= 3 else []
        groups.append((touchpoint.description, *[e for e in touchpoint.examples if e not in held]))
        texts += held
        gold += [[touchpoint.id]] * len(held)
    if len(texts) < 5:
        return None
    off_topic = off_topic_texts(taxonomy)
    texts += off_topic
    gold += [[OTHER]] * len(off_topic)
    similarities = encoder.encode(texts) @ prototypes(encoder, groups).T
    floor, margin, score = search_thresholds(similarities, gold, taxonomy.ids, max_tags)
    return Thresholds(round(floor + offset, 3), margin,
                      f"the pack's own examples ({len(texts) - len(off_topic)} held out, {len(off_topic)} off-topic "
                      f"texts; micro-F1 there {score:.2f}; floor {floor:.2f} {offset:+.2f} for real texts)")  # fmt: skip


def labelled_thresholds(calibration: dict, taxonomy: Taxonomy) -> Thresholds | None:
    """Thresholds `touchpoint train tagging` stored for this exact taxonomy file, if any."""
    entry = calibration.get("taxonomies", {}).get(taxonomy.fingerprint)
    if entry:
        return Thresholds(float(entry["min_similarity"]), float(entry["margin"]), entry.get("calibrated_on", "labels"))
    legacy = "touchpoint_min_similarity" in calibration and "taxonomies" not in calibration
    if legacy and taxonomy.name == GENERIC and calibration.get("taxonomy_version") == taxonomy.version:
        return Thresholds(calibration["touchpoint_min_similarity"], calibration.get("touchpoint_margin", DEFAULT_MARGIN),
                          calibration.get("calibrated_on", "labels"))  # fmt: skip
    return None
