"""A field mapping for imports: any export's columns -> a RawSignal.

``touchpoint import FILE --map ...`` (repeatable) and/or ``--mapping FILE.yaml``
say which column is what, so an export in the tool's own names imports
without rewriting it. The YAML form::

    id: response_id                 # required: the source's own id (deduplication)
    occurred_at: submitted_at       # required: ISO 8601 or Unix seconds/milliseconds (no zone = UTC)
    scores:                         # the first non-empty one is the score, the others attributes
      - {column: nps, metric: nps}                    # nps 0-10, csat 1-5, ces 1-7
      - {column: stars, metric: rating, scale: [1, 5]}  # a rating needs its scale
    comment: [comment, other_feedback]   # joined, one per line
    identity: {email: email, phone: mobile, account: crm_id}
    touchpoint: journey_step        # a column whose value hints the touchpoint
    brand: brand_column             # a column (else --brand)
    attributes: [store, region]     # kept as string attributes

The same with options: ``--map id=response_id --map occurred_at=submitted_at
--map nps=nps --map rating=stars:1-5 --map comment=comment --map
email=email --map attribute=store`` (``KEY=COLUMN``; a score's scale after
``:``). Options add to (and for single fields replace) the file's mapping.
A column name with dots reads into nested JSON (``customer.email``).

Only mapped columns are read: everything else in the row is ignored, so a
column of names or addresses never slips into attributes; an identifier
column listed under ``attributes`` is refused (map it under ``identity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from touchpoint.connectors.surveys import scored
from touchpoint.core.identity import Identity, identifier_kind
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import SCORE_SCALES, InvalidSignal, RawSignal, Score

IDENTITY_KINDS = ("email", "phone", "account")
SINGLE_FIELDS = ("id", "occurred_at", "touchpoint", "brand")


class MappingError(ValueError):
    """The mapping itself is wrong (not a row): the message says what to write instead."""


@dataclass(frozen=True)
class ScoreColumn:
    column: str
    metric: str
    scale: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.metric not in SCORE_SCALES:
            raise MappingError(f"score column {self.column!r}: metric {self.metric!r} is not one of {', '.join(SCORE_SCALES)}")
        standard = SCORE_SCALES[self.metric]
        if standard is None and self.scale is None:
            raise MappingError(f"score column {self.column!r}: a rating needs its scale, e.g. rating={self.column}:1-5")
        if standard is not None and self.scale is not None and self.scale != standard:
            raise MappingError(
                f"score column {self.column!r}: {self.metric} is on {standard[0]}-{standard[1]}, not"
                f" {self.scale[0]}-{self.scale[1]}; map it as rating={self.column}:{self.scale[0]}-{self.scale[1]}"
            )

    def score(self, value: Any) -> Score:
        low, high = self.scale or SCORE_SCALES[self.metric] or (1, 5)
        return scored(self.metric, value, high, low)


@dataclass(frozen=True)
class FieldMapping:
    id: str
    occurred_at: str
    scores: tuple[ScoreColumn, ...] = ()
    comment: tuple[str, ...] = ()
    identity: Mapping[str, str] = field(default_factory=dict)
    touchpoint: str | None = None
    brand: str | None = None
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.identity) - set(IDENTITY_KINDS))
        if unknown:
            raise MappingError(f"identity kinds {unknown} are not {', '.join(IDENTITY_KINDS)}")
        for column in self.attributes:
            if identifier_kind(column.rsplit(".", 1)[-1]) is not None:
                raise MappingError(f"column {column!r} holds customer identifiers; map it under identity, not attributes")

    @property
    def columns(self) -> set[str]:
        """Every column this mapping reads."""
        single = {getattr(self, name) for name in SINGLE_FIELDS} - {None}
        return single | {s.column for s in self.scores} | set(self.comment) | set(self.identity.values()) | set(self.attributes)

    def to_signal(self, row: Mapping[str, Any], *, channel: str, source: str, brand: str, identity: Identity) -> RawSignal:
        """One row as a RawSignal; raises InvalidSignal naming the column at fault."""
        source_id = _value(row, self.id)
        if source_id in (None, ""):
            raise InvalidSignal(f"column {self.id!r} (id) is empty: each row needs the source's own id")
        scores = []
        for column in self.scores:
            value = _value(row, column.column)
            if value not in (None, ""):
                try:
                    scores.append((column, column.score(value)))
                except InvalidSignal as exc:
                    raise InvalidSignal(f"column {column.column!r}: {exc}") from exc
        texts = [str(v).strip() for v in (_value(row, c) for c in self.comment) if v not in (None, "") and str(v).strip()]
        attributes = {c: str(v) for c in self.attributes if (v := _value(row, c)) not in (None, "")}
        for column, score in scores[1:]:
            attributes[f"score.{column.column}"] = f"{score.metric} {score.value:g}"
        found = {kind: _value(row, column) for kind, column in self.identity.items()}
        return RawSignal(
            source=source, source_id=str(source_id), channel=channel,
            brand=str(_value(row, self.brand) or brand) if self.brand else brand,
            occurred_at=parse_timestamp(_value(row, self.occurred_at), f"column {self.occurred_at!r} (occurred_at)"),
            text="\n".join(texts) or None, score=scores[0][1] if scores else None,
            customer_id=identity.resolve({k: v for k, v in found.items() if v not in (None, "")}),
            touchpoint_hint=str(_value(row, self.touchpoint) or "") or None if self.touchpoint else None,
            attributes=attributes,
        )  # fmt: skip


def _value(row: Mapping[str, Any], column: str | None) -> Any:
    """A column's value; ``a.b`` reads nested JSON when the row has no column named ``a.b``."""
    if column is None:
        return None
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# ---------------------------------------------------------------- building a mapping


def _scale(text: str, where: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.strip().lstrip("-").isdigit() or not high.strip().isdigit():
        raise MappingError(f"{where}: scale {text!r} is not LOW-HIGH, e.g. 1-5")
    return int(low), int(high)


def _from_yaml(data: Any, origin: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: a mapping file is a YAML mapping (id: ..., occurred_at: ..., scores: [...])")
    spec: dict[str, Any] = {"scores": [], "comment": [], "identity": {}, "attributes": []}
    known = {*SINGLE_FIELDS, "scores", "comment", "identity", "attributes"}
    if set(data) - known:
        raise MappingError(f"{origin}: unknown keys {sorted(set(data) - known)}; known: {', '.join(sorted(known))}")
    for name in SINGLE_FIELDS:
        if data.get(name) is not None:
            spec[name] = str(data[name])
    for item in data.get("scores") or []:
        if not isinstance(item, dict) or "column" not in item or "metric" not in item:
            raise MappingError(f"{origin}: each score is {{column: ..., metric: nps|csat|ces|rating, scale: [LOW, HIGH]}}")
        scale = item.get("scale")
        spec["scores"].append(ScoreColumn(str(item["column"]), str(item["metric"]), tuple(scale) if scale else None))
    comment = data.get("comment") or []
    spec["comment"] = [comment] if isinstance(comment, str) else [str(c) for c in comment]
    spec["identity"] = {str(k): str(v) for k, v in (data.get("identity") or {}).items()}
    spec["attributes"] = [str(c) for c in data.get("attributes") or []]
    return spec


def _apply_option(spec: dict[str, Any], option: str) -> None:
    key, sep, column = option.partition("=")
    key, column = key.strip(), column.strip()
    if not sep or not key or not column:
        raise MappingError(f"--map {option!r} is not KEY=COLUMN (e.g. --map id=response_id)")
    if key in SINGLE_FIELDS:
        spec[key] = column
    elif key in SCORE_SCALES:
        name, _, scale = column.partition(":")
        spec["scores"].append(ScoreColumn(name, key, _scale(scale, f"--map {option}") if scale else None))
    elif key == "comment":
        spec["comment"].append(column)
    elif key in IDENTITY_KINDS:
        spec["identity"][key] = column
    elif key in ("attribute", "attributes"):
        spec["attributes"] += [c.strip() for c in column.split(",") if c.strip()]
    else:
        keys = [*SINGLE_FIELDS, *SCORE_SCALES, "comment", *IDENTITY_KINDS, "attribute"]
        raise MappingError(f"--map {option!r}: {key!r} is not one of {', '.join(keys)}")


def build_mapping(options: Iterable[str] = (), mapping_file: str | Path | None = None) -> FieldMapping | None:
    """The mapping the command line asks for (None when it asks for none: the generic shape applies)."""
    options = list(options)
    if not options and mapping_file is None:
        return None
    spec: dict[str, Any] = {"scores": [], "comment": [], "identity": {}, "attributes": []}
    if mapping_file is not None:
        path = Path(mapping_file)
        if not path.is_file():
            raise MappingError(f"mapping file {path} does not exist")
        try:
            spec = _from_yaml(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: not readable YAML ({exc})") from exc
    for option in options:
        _apply_option(spec, option)
    missing = [name for name in ("id", "occurred_at") if not spec.get(name)]
    if missing:
        raise MappingError(f"the mapping needs {' and '.join(missing)}: e.g. --map id=response_id --map occurred_at=submitted_at")
    return FieldMapping(
        id=spec["id"], occurred_at=spec["occurred_at"], scores=tuple(spec["scores"]), comment=tuple(spec["comment"]),
        identity=spec["identity"], touchpoint=spec.get("touchpoint"), brand=spec.get("brand"),
        attributes=tuple(spec["attributes"]),
    )  # fmt: skip
