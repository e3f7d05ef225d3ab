"""Why an alert fired: customers' words, three verbatims, and which channels and sources moved.

* Terms: the words and phrases most over-represented in the window's texts
  against the baseline windows' texts of the same series and metric
  population (weighted log-odds, pipeline/alerts/words.py).
* Verbatims: the three redacted window texts on the bad side of the metric
  (negative texts for sentiment, detractors for NPS, ...) that say most of
  those terms.
* Contributions: per channel and per source, the window and baseline values
  and each one's part of the change; for volume the extra (or missing)
  signals, for a share or score the share-weighted difference, which adds up
  to the whole change.
"""

from __future__ import annotations

from typing import Any

from touchpoint.pipeline.alerts.detect import Finding
from touchpoint.pipeline.alerts.series import AlertMetric, Counts, Windows, read_counts, slot_sql
from touchpoint.pipeline.alerts.words import over_represented, representative
from touchpoint.pipeline.queries import FINAL_SETTINGS
from touchpoint.pipeline.store import Store

TEXTS_PER_WINDOW = 2000  # a sample (stable: by signal_id hash) when a window holds more
TERMS = 10
VERBATIMS = 3
CONTRIBUTORS = 5
SERIES_FILTER = {
    "brand": "1",
    "channel": "channel = {value:String}",
    "touchpoint": "has(touchpoints, {value:String})",
}
BY_CHANNEL_AND_SOURCE = "ARRAY JOIN [('channel', toString(channel)), ('source', toString(source))] AS series"


def _series_where(finding: Finding) -> tuple[str, dict[str, Any]]:
    brand, dimension, value = finding.series
    return f"brand = {{brand:String}} AND {SERIES_FILTER[dimension]}", {"brand": brand, "value": value}


def _texts(store: Store, finding: Finding) -> list[dict[str, Any]]:
    slot, in_windows, params = slot_sql(finding.windows)
    where, series_params = _series_where(finding)
    metric = finding.metric
    sql = (
        f"SELECT {slot} AS slot, text_redacted AS text, toUInt8({metric.bad}) AS bad, sentiment_score "
        f"FROM {{db}}.signals FINAL WHERE {in_windows} AND {where} AND ({metric.population}) "
        "AND text_redacted IS NOT NULL AND text_redacted != '' "
        f"ORDER BY slot, cityHash64(signal_id) LIMIT {TEXTS_PER_WINDOW} BY slot"
    )
    return store.query(sql + FINAL_SETTINGS, {**params, **series_params})


def contributions(metric: AlertMetric, counts: dict[tuple[str, str, str], Counts], slots: tuple[int, ...]) -> dict[str, list[dict[str, Any]]]:
    """Per channel and per source: window and baseline values, n, and the part of the change each explains."""
    totals = {side: sum(metric.value(c, side_slots)[1] for c in counts.values()) for side, side_slots in (("w", (0,)), ("b", slots))}
    result: dict[str, list[dict[str, Any]]] = {"channel": [], "source": []}
    for (_, dimension, value), c in counts.items():
        current, n = metric.value(c, (0,))
        baseline, baseline_n = metric.value(c, slots)
        if n == 0 and baseline_n == 0:
            continue  # e.g. a channel without NPS responses
        if metric.kind == "count":
            part = current - baseline
        else:
            weighted_now = (current or 0) * n / totals["w"] if totals["w"] else 0.0
            weighted_before = (baseline or 0) * baseline_n / totals["b"] if totals["b"] else 0.0
            part = weighted_now - weighted_before
        result[dimension].append(
            {dimension: value, "current": current, "n": n, "baseline": baseline, "baseline_n": baseline_n, "change": round(part, 2)}
        )
    sign = 1 if metric.direction == "up" else -1
    return {dim: sorted(rows, key=lambda r: -sign * r["change"])[:CONTRIBUTORS] for dim, rows in result.items()}


def explain(store: Store, finding: Finding, emotions: list[str]) -> dict[str, Any]:
    """Terms, verbatims and contributions for one flagged finding (JSON-ready)."""
    rows = _texts(store, finding)
    window = [r for r in rows if r["slot"] == 0]
    baseline = [r["text"] for r in rows if r["slot"] in finding.baseline_slots]
    top = over_represented([r["text"] for r in window], baseline, limit=TERMS)
    # The bad side of the metric, most negative first: the typical complaint when no term stands out.
    bad = sorted((r for r in window if r["bad"]), key=lambda r: (r["sentiment_score"] is None, r["sentiment_score"] or 0))
    where, params = _series_where(finding)
    counts = read_counts(store, finding.windows, emotions, BY_CHANNEL_AND_SOURCE, where, params)
    return {
        "terms": [
            {"term": t.term, "z": round(t.z, 2), "window_count": t.window_count, "baseline_count": t.baseline_count}
            for t in top
        ],
        "verbatims": representative([r["text"] for r in bad], top, VERBATIMS),
        "texts": {"window": len(window), "baseline": len(baseline)},
        "contributions": contributions(finding.metric, counts, finding.baseline_slots),
    }


def window_json(windows: Windows, slots: tuple[int, ...]) -> dict[str, Any]:
    start, end = windows.bounds(0)
    return {
        "start": start, "end": end, "baseline": windows.baseline,
        "baseline_windows": [dict(zip(("start", "end"), windows.bounds(s))) for s in slots],
    }  # fmt: skip
