"""The raw signal: what every connector produces to ``signals.raw``.

A signal's identity is deterministic (uuid5 of its source and the source's own
id), so a re-delivered or re-imported signal becomes the same ClickHouse row.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

KINDS = ("direct", "indirect")
CHANNELS = ("survey", "chat", "email", "call", "social", "review")
DIRECT_CHANNELS = frozenset({"survey", "chat", "email", "call"})
# metric -> the scale every source must use for it (rating scales vary, so they are free)
SCORE_SCALES: dict[str, tuple[int, int] | None] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "rating": None}
MAX_TEXT_CHARS = 20_000

_NAMESPACE = uuid.UUID("6f1c3c8e-6d0b-5b8e-9a57-1b7f0e5a2c11")

Kind = Literal["direct", "indirect"]


class InvalidSignal(ValueError):
    """A record that parsed but breaks a rule of the raw-signal contract."""


def make_signal_id(source: str, source_id: str) -> str:
    """Deterministic id: the same source record always gets the same signal_id."""
    if not source or not source_id:
        raise InvalidSignal("source and source_id are both required to derive signal_id")
    return str(uuid.uuid5(_NAMESPACE, f"{source}\x1f{source_id}"))


def kind_of(channel: str) -> Kind:
    """Direct when the brand owns the channel (surveys, chats, email, calls)."""
    return "direct" if channel in DIRECT_CHANNELS else "indirect"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Score:
    metric: str
    value: float
    scale_min: int
    scale_max: int


@dataclass(frozen=True)
class RawSignal:
    source: str
    source_id: str
    channel: str
    brand: str
    occurred_at: datetime
    text: str | None = None
    score: Score | None = None
    customer_id: str | None = None
    author: str | None = None
    touchpoint_hint: str | None = None
    url: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    kind: str | None = None
    ingested_at: datetime = field(default_factory=utc_now)

    @property
    def signal_id(self) -> str:
        return make_signal_id(self.source, self.source_id)

    @property
    def kafka_key(self) -> bytes:
        """Customer id where known (keeps a journey in one partition), else author, else signal id."""
        return (self.customer_id or self.author or self.signal_id).encode()

    def to_record(self) -> dict[str, Any]:
        """The Avro record (validated first, so bad input fails before the broker)."""
        # shallow: asdict deep-copies every value, and this runs once per signal a connector sends
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["score"] = None if self.score is None else asdict(self.score)
        record["attributes"] = dict(self.attributes)
        record["kind"] = self.kind or kind_of(self.channel)
        record["signal_id"] = self.signal_id
        record["text_sealed"] = None  # the producer seals the text for the wire (touchpoint.core.sealing)
        validate_record(record)
        return record


def validate_record(record: dict[str, Any]) -> None:
    """Semantic rules Avro types cannot express; raises InvalidSignal naming the fix."""
    channel = record.get("channel")
    if channel not in CHANNELS:
        raise InvalidSignal(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if record.get("kind") not in KINDS:
        raise InvalidSignal(f"kind {record.get('kind')!r} is not direct or indirect")
    if not str(record.get("brand") or "").strip():
        raise InvalidSignal("brand is empty; set it in the connector config")
    text = record.get("text")
    score = record.get("score")
    if (text is None or not text.strip()) and score is None:
        raise InvalidSignal("signal has neither text nor score; nothing to analyse")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidSignal(f"text is {len(text)} characters, over the {MAX_TEXT_CHARS} limit")
    for stamp in ("occurred_at", "ingested_at"):
        value = record.get(stamp)
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise InvalidSignal(f"{stamp} must be a timezone-aware datetime (got {value!r})")
    if score is not None:
        _validate_score(score)


def _validate_score(score: Any) -> None:
    data = score if isinstance(score, dict) else asdict(score)
    metric = data.get("metric")
    if metric not in SCORE_SCALES:
        raise InvalidSignal(f"score metric {metric!r} is not one of {', '.join(SCORE_SCALES)}")
    value, low, high = data.get("value"), data.get("scale_min"), data.get("scale_max")
    expected = SCORE_SCALES[metric]
    if expected is not None and (low, high) != expected:
        raise InvalidSignal(f"{metric} must use the scale {expected[0]}-{expected[1]} (got {low}-{high})")
    if not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidSignal(f"{metric} score {value!r} is outside its scale {low}-{high}")
