"""Enriched signals for metric tests: one dict per signal, stored through the real sink mapping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import SIGNAL_COLUMNS, Store

T0 = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
SCORE_OF_LABEL = {"positive": 0.8, "negative": -0.7, "neutral": 0.0}


def signal(
    i: int,
    *,
    metric: str | None = None,
    value: float | None = None,
    label: str | None = "neutral",
    touchpoints: Iterable[str] = ("delivery",),
    at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An enriched record as the sink receives it; ``metric``/``value`` make it a survey response."""
    score = None
    if metric is not None:
        low, high = SCALES[metric]
        score = {"metric": metric, "value": value, "scale_min": low, "scale_max": high}
    record = {
        "signal_id": f"sig-{i}", "source_id": str(i), "kind": "direct", "channel": "survey", "source": "typeform",
        "brand": "acme", "customer_id": None, "author": None, "occurred_at": at or T0 + timedelta(minutes=i),
        "ingested_at": T0, "enriched_at": T0, "text_redacted": f"comment number {i} about my order" if label else None,
        "pii_found": [], "language": "en", "score": score, "touchpoint_hint": None,
        "touchpoints": list(touchpoints), "journey_stage": "delivery_onboarding",
        "sentiment_label": label, "sentiment_score": SCORE_OF_LABEL.get(label) if label else None,
        "emotions": [], "url": None, "attributes": {}, "model_version": "test",
    }  # fmt: skip
    record.update(extra)
    return record


def store_signals(store: Store, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    records = list(records)
    store.insert_signals([signal_row(r) for r in records])
    return records


def insert_into_older_schema(store: Store, rows: Iterable[list[Any]]) -> None:
    """Rows (SIGNAL_COLUMNS order) into a signals table from before later migrations added columns:
    only the columns it has, as a worker of that time wrote them."""
    present = {r["name"] for r in store.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND table = 'signals'", {"d": store.database}
    )}  # fmt: skip
    columns = [c for c in SIGNAL_COLUMNS if c in present]
    store.insert("signals", [[row[SIGNAL_COLUMNS.index(c)] for c in columns] for row in rows], columns)
