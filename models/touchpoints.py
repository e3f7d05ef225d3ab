"""Touchpoint and journey-stage tagging by embedding similarity to an editable taxonomy.

Each touchpoint's prototype is the normalised mean of the embeddings of its
description and examples. A text gets every touchpoint whose cosine similarity
clears ``min_similarity`` (at most ``max_tags``), or ``other`` when none does:
an honest "unknown" beats a forced guess. A survey's touchpoint hint is kept first.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from touchpoint.models.encoder import SentenceEncoder

OTHER = "other"
UNKNOWN_STAGE = "unknown"


@dataclass(frozen=True)
class Touchpoint:
    id: str
    stage: str
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    stages: tuple[str, ...]
    touchpoints: tuple[Touchpoint, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Taxonomy":
        file = Path(path) if path else Path(str(resources.files("touchpoint.models").joinpath("taxonomy.yaml")))
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        stages = tuple(data["stages"])
        touchpoints = []
        for item in data["touchpoints"]:
            if item["stage"] not in stages:
                raise ValueError(f"{file}: touchpoint {item['id']!r} has unknown stage {item['stage']!r}")
            touchpoints.append(
                Touchpoint(item["id"], item["stage"], item["description"], tuple(item.get("examples", ())))
            )
        return cls(str(data.get("version", "1")), stages, tuple(touchpoints))

    def stage_of(self, touchpoint_id: str) -> str:
        for touchpoint in self.touchpoints:
            if touchpoint.id == touchpoint_id:
                return touchpoint.stage
        return UNKNOWN_STAGE

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.touchpoints)


def prototypes(encoder: SentenceEncoder, groups: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit vector per group of texts: the normalised mean of their embeddings."""
    flat = [text for group in groups for text in group]
    vectors = encoder.encode(flat)
    out, start = [], 0
    for group in groups:
        mean = vectors[start : start + len(group)].mean(axis=0)
        out.append(mean / (np.linalg.norm(mean) or 1.0))
        start += len(group)
    return np.stack(out).astype(np.float32)


DEFAULT_MIN_SIMILARITY = 0.35
DEFAULT_MARGIN = 1.0  # keep tags within this much of the best one (1.0 = no margin rule)


class TouchpointTagger:
    """Similarity to each touchpoint's prototype; a floor and a margin below the best tag.

    Both are calibrated on the dev part of models/labels/cx_labelled.jsonl by
    `touchpoint train tagging` (models/artifacts/tagging.json); an explicit
    ``min_similarity`` (TOUCHPOINT_TOUCHPOINT_MIN_SIMILARITY) overrides the floor.
    """

    def __init__(
        self, encoder: SentenceEncoder, taxonomy: Taxonomy, min_similarity: float | None = None, max_tags: int = 3,
        margin: float | None = None,
    ) -> None:  # fmt: skip
        from touchpoint.models.emotion import load_calibration

        calibrated = load_calibration()
        self.taxonomy = taxonomy
        self.min_similarity = (
            min_similarity if min_similarity is not None
            else calibrated.get("touchpoint_min_similarity", DEFAULT_MIN_SIMILARITY)
        )  # fmt: skip
        self.margin = margin if margin is not None else calibrated.get("touchpoint_margin", DEFAULT_MARGIN)
        self.max_tags = max_tags
        groups = [(t.description, *t.examples) for t in taxonomy.touchpoints]
        self.prototypes = prototypes(encoder, groups)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.prototypes.T

    def tag(self, embeddings: np.ndarray, hints: Sequence[str | None]) -> list[tuple[list[str], str]]:
        """(touchpoint ids, journey stage) per text; stage follows the first touchpoint."""
        return [self._tag_row(row, hint) for row, hint in zip(self.similarities(embeddings), hints)]

    def _tag_row(self, row: np.ndarray, hint: str | None) -> tuple[list[str], str]:
        best = float(row.max()) if len(row) else 0.0
        ranked = [int(i) for i in np.argsort(-row) if row[i] >= self.min_similarity and row[i] >= best - self.margin]
        tags = [self.taxonomy.touchpoints[i].id for i in ranked[: self.max_tags]]
        if hint and hint in self.taxonomy.ids:
            tags = [hint] + [t for t in tags if t != hint][: self.max_tags - 1]
        if not tags:
            return [OTHER], UNKNOWN_STAGE
        return tags, self.taxonomy.stage_of(tags[0])
