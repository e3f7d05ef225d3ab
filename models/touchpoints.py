"""Touchpoint and journey-stage tagging by embedding similarity to an editable taxonomy.

Each touchpoint's prototype is the normalised mean of the embeddings of its
description and examples. A text gets every touchpoint whose cosine similarity
clears ``min_similarity`` (at most ``max_tags``), or ``other`` when none does:
an honest "unknown" beats a forced guess. A survey's touchpoint hint is kept first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from touchpoint.models.datafile import DataFileError, check_keys, read_yaml, text_list, where
from touchpoint.models.encoder import SentenceEncoder, prototypes

OTHER = "other"
UNKNOWN_STAGE = "unknown"


@dataclass(frozen=True)
class Touchpoint:
    id: str
    stage: str
    description: str
    examples: tuple[str, ...]


TOUCHPOINT_KEYS = ("id", "stage", "description", "examples")
TAXONOMY_KEYS = ("name", "title", "version", "stages", "touchpoints", "off_topic")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
GENERIC = "generic"


def packs_dir() -> Path:
    return Path(str(resources.files("touchpoint.models").joinpath("taxonomies")))


def bundled_packs() -> dict[str, Path]:
    """Pack name -> file: the industry packs in models/taxonomies/ and the generic models/taxonomy.yaml."""
    packs = {GENERIC: Path(str(resources.files("touchpoint.models").joinpath("taxonomy.yaml")))}
    packs.update({p.stem: p for p in sorted(packs_dir().glob("*.yaml")) if not p.stem.startswith("_")})
    return packs


def resolve_taxonomy(spec: str | Path | None) -> Path:
    """A bundled pack name (``airline``), a file path, or None for the generic taxonomy."""
    packs = bundled_packs()
    if spec is None or str(spec).strip() == "":
        return packs[GENERIC]
    text = str(spec).strip()
    if text in packs:
        return packs[text]
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        raise DataFileError(
            f"unknown taxonomy pack {text!r}: use one of {', '.join(packs)} or the path of a YAML file"
        )
    return path


@dataclass(frozen=True)
class Taxonomy:
    version: str
    stages: tuple[str, ...]
    touchpoints: tuple[Touchpoint, ...]
    name: str = GENERIC
    title: str = ""
    off_topic: tuple[str, ...] = ()
    fingerprint: str = ""  # sha256 of the file: calibrations are kept per exact content

    @classmethod
    def load(cls, spec: str | Path | None = None) -> "Taxonomy":
        """Read and check a pack; every mistake is a :class:`DataFileError` naming the line and the fix."""
        file = resolve_taxonomy(spec)
        data = read_yaml(file, "taxonomy")
        check_keys(file, data, TAXONOMY_KEYS, "the taxonomy")
        stages = data.get("stages")
        if not isinstance(stages, list) or not stages or not all(isinstance(s, str) and s for s in stages):
            raise DataFileError(f"{file}: `stages` must be a non-empty list of journey stage names, e.g. [booking, support]")
        items = data.get("touchpoints")
        if not isinstance(items, list) or not items:
            raise DataFileError(f"{file}: `touchpoints` must be a non-empty list of entries with id, stage, description")
        touchpoints, seen = [], set()
        for item in items:
            touchpoints.append(_touchpoint(file, item, tuple(stages), seen))
        off_topic = text_list(file, data, "off_topic", "the taxonomy")
        fingerprint = hashlib.sha256(file.read_bytes()).hexdigest()
        name = str(data.get("name") or (GENERIC if file == bundled_packs()[GENERIC] else file.stem))
        return cls(str(data.get("version", "1")), tuple(stages), tuple(touchpoints), name, str(data.get("title", "")),
                   off_topic, fingerprint)  # fmt: skip

    def stage_of(self, touchpoint_id: str) -> str:
        for touchpoint in self.touchpoints:
            if touchpoint.id == touchpoint_id:
                return touchpoint.stage
        return UNKNOWN_STAGE

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.touchpoints)


def _touchpoint(file: Path, item: object, stages: tuple[str, ...], seen: set[str]) -> Touchpoint:
    if not isinstance(item, dict):
        raise DataFileError(f"{file}: each entry of `touchpoints` must be a mapping with id, stage, description")
    check_keys(file, item, TOUCHPOINT_KEYS, "a touchpoint")
    for key in ("id", "stage", "description"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise DataFileError(f"{where(file, item)}: the touchpoint needs `{key}` (a text)")
    tid = item["id"]
    if not ID_PATTERN.match(tid) or tid == OTHER:
        raise DataFileError(
            f"{where(file, item)}: touchpoint id {tid!r} must be lower_snake_case (a-z, 0-9, _) and not {OTHER!r}"
        )
    if tid in seen:
        raise DataFileError(f"{where(file, item)}: touchpoint id {tid!r} appears twice; rename or merge one of them")
    seen.add(tid)
    if item["stage"] not in stages:
        raise DataFileError(
            f"{where(file, item)}: touchpoint {tid!r} has unknown stage {item['stage']!r}; "
            f"use one of {', '.join(stages)} or add it to `stages`"
        )
    return Touchpoint(tid, item["stage"], item["description"].strip(), text_list(file, item, "examples", f"touchpoint {tid!r}"))


DEFAULT_MIN_SIMILARITY = 0.35
DEFAULT_MARGIN = 1.0  # keep tags within this much of the best one (1.0 = no margin rule)
MARGINS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 1.0)
FLOORS = tuple(float(f) for f in np.round(np.arange(0.15, 0.6, 0.01), 2))


def ranked_tags(row: np.ndarray, floor: float, margin: float, max_tags: int) -> list[int]:
    """Indices of the touchpoints a text gets: above the floor, within ``margin`` of the best, strongest first."""
    best = float(row.max()) if len(row) else 0.0
    return [int(i) for i in np.argsort(-row) if row[i] >= floor and row[i] >= best - margin][:max_tags]


@dataclass(frozen=True)
class Thresholds:
    min_similarity: float
    margin: float
    source: str  # where they come from, for the model card and `touchpoint train tagging`


class TouchpointTagger:
    """Similarity to each touchpoint's prototype; a floor and a margin below the best tag.

    Thresholds, first that applies: an explicit ``min_similarity``
    (TOUCHPOINT_TOUCHPOINT_MIN_SIMILARITY); a labelled calibration of this exact
    taxonomy file (``touchpoint train tagging``, models/artifacts/tagging.json);
    else a calibration on the taxonomy's own examples, made here at load on
    whatever encoder is loaded (models/touchpoint_calibration.py) — so a new pack
    or a brand's own file needs no labels.
    """

    def __init__(
        self, encoder: SentenceEncoder, taxonomy: Taxonomy, min_similarity: float | None = None, max_tags: int = 3,
        margin: float | None = None, calibration: dict | None = None,
    ) -> None:  # fmt: skip
        from touchpoint.models.emotion import load_calibration
        from touchpoint.models.touchpoint_calibration import labelled_thresholds, thresholds_from_examples

        self.taxonomy = taxonomy
        self.max_tags = max_tags
        groups = [(t.description, *t.examples) for t in taxonomy.touchpoints]
        self.prototypes = prototypes(encoder, groups)
        calibration = load_calibration() if calibration is None else calibration
        found = labelled_thresholds(calibration, taxonomy)
        if found is None and (min_similarity is None or margin is None):
            offset = float(calibration.get("touchpoint_example_offset", 0.0))
            found = thresholds_from_examples(encoder, taxonomy, max_tags, offset)
        found = found or Thresholds(DEFAULT_MIN_SIMILARITY, DEFAULT_MARGIN, "defaults")
        self.min_similarity = min_similarity if min_similarity is not None else found.min_similarity
        self.margin = margin if margin is not None else found.margin
        self.threshold_source = "settings" if min_similarity is not None else found.source

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.prototypes.T

    def tag(self, embeddings: np.ndarray, hints: Sequence[str | None]) -> list[tuple[list[str], str]]:
        """(touchpoint ids, journey stage) per text; stage follows the first touchpoint."""
        return [self._tag_row(row, hint) for row, hint in zip(self.similarities(embeddings), hints)]

    def _tag_row(self, row: np.ndarray, hint: str | None) -> tuple[list[str], str]:
        tags = [self.taxonomy.touchpoints[i].id for i in ranked_tags(row, self.min_similarity, self.margin, self.max_tags)]
        if hint and hint in self.taxonomy.ids:
            tags = [hint] + [t for t in tags if t != hint][: self.max_tags - 1]
        if not tags:
            return [OTHER], UNKNOWN_STAGE
        return tags, self.taxonomy.stage_of(tags[0])
