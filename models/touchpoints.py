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

from models.encoder import SentenceEncoder

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
        file = Path(path) if path else Path(str(resources.files("models").joinpath("taxonomy.yaml")))
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


class TouchpointTagger:
    def __init__(
        self, encoder: SentenceEncoder, taxonomy: Taxonomy, min_similarity: float = 0.35, max_tags: int = 3
    ) -> None:
        self.taxonomy = taxonomy
        self.min_similarity = min_similarity
        self.max_tags = max_tags
        groups = [(t.description, *t.examples) for t in taxonomy.touchpoints]
        self.prototypes = prototypes(encoder, groups)

    def tag(self, embeddings: np.ndarray, hints: Sequence[str | None]) -> list[tuple[list[str], str]]:
        """(touchpoint ids, journey stage) per text; stage follows the first touchpoint."""
        similarity = embeddings @ self.prototypes.T
        results = []
        for row, hint in zip(similarity, hints):
            ranked = [int(i) for i in np.argsort(-row) if row[i] >= self.min_similarity][: self.max_tags]
            tags = [self.taxonomy.touchpoints[i].id for i in ranked]
            if hint and hint in self.taxonomy.ids:
                tags = [hint] + [t for t in tags if t != hint][: self.max_tags - 1]
            if not tags:
                results.append(([OTHER], UNKNOWN_STAGE))
            else:
                results.append((tags, self.taxonomy.stage_of(tags[0])))
        return results
