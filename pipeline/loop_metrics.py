"""How well the loop closes, computed in ClickHouse from ``cases FINAL`` (one row per case).

* open now: cases open or acknowledged, and those of them past their SLA due time;
* over the cases *opened* in a window (``routed`` = n, the count every number rests on):
  - SLA breaches: closed after the due time, or still open past it;
  - median time to acknowledge and to close (seconds; null when none was);
  - close-the-loop rate = cases closed within their SLA / cases routed, in %.

A routed case counts once however many signals were attached to it
(``signals`` says how many). Grouped by team and priority, or team and touchpoint.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from touchpoint.core import metrics
from touchpoint.pipeline.cases import BREACHED, STILL_OPEN
from touchpoint.pipeline.queries import Filters
from touchpoint.pipeline.store import Store

log = logging.getLogger(__name__)
GROUPINGS: dict[str, tuple[str, ...]] = {
    "team,priority": ("team", "priority"),
    "team,touchpoint": ("team", "touchpoint"),
    "team": ("team",),
    "touchpoint": ("touchpoint",),
    "total": (),
}


def _median_seconds(stamp: str) -> str:
    """Median seconds from opening to ``stamp`` over cases that have it; NULL when none has."""
    seconds = f"dateDiff('millisecond', opened_at, assumeNotNull({stamp})) / 1000"
    return f"if(countIf({stamp} IS NOT NULL) = 0, NULL, round(quantileExactInclusiveIf(0.5)({seconds}, {stamp} IS NOT NULL), 1))"


def loop_rows(store: Store, filters: Filters = Filters(), by: Sequence[str] = ("team", "priority"), min_n: int = 30) -> list[dict[str, Any]]:
    """One row per group of cases opened within ``filters`` (since/until on opened_at, brand)."""
    keys = [k for k in by if k in ("team", "priority", "touchpoint", "brand")]
    if len(keys) != len(by):
        raise ValueError(f"group cases by team, priority, touchpoint or brand (got {', '.join(by)})")
    where, params = Filters(filters.since, filters.until, filters.brand).where("opened_at")
    group = ", ".join(keys) or "tuple()"
    select = "".join(f"{k}, " for k in keys)
    sql = f"""
        SELECT {select}count() AS n,
               countIf({STILL_OPEN}) AS open,
               countIf(status = 'closed') AS closed,
               countIf(status = 'closed' AND closed_at <= due_at) AS closed_within_sla,
               round(100 * closed_within_sla / n, 1) AS close_rate,
               countIf({BREACHED}) AS sla_breaches,
               {_median_seconds('acknowledged_at')} AS median_ack_s,
               {_median_seconds('closed_at')} AS median_close_s
        FROM {{db}}.cases FINAL WHERE {where}
        GROUP BY {group} ORDER BY n DESC{''.join(f', {k}' for k in keys)}
    """
    rows = store.query(sql, params)
    for row in rows:
        row["low_confidence"] = row["n"] < min_n
    return rows


def open_now(store: Store, brand: str | None = None) -> list[dict[str, Any]]:
    """Cases open or acknowledged now, and those past due, by team and priority."""
    where, params = Filters(brand=brand).where("opened_at")
    sql = f"""
        SELECT team, priority, countIf(status = 'open') AS open, countIf(status = 'acknowledged') AS acknowledged,
               count() AS open_total, countIf({BREACHED}) AS breached, min(opened_at) AS oldest_opened_at
        FROM {{db}}.cases FINAL WHERE {STILL_OPEN} AND {where}
        GROUP BY team, priority ORDER BY breached DESC, open_total DESC, team, priority
    """
    return store.query(sql, params)


def loop_summary(store: Store, filters: Filters = Filters(), min_n: int = 30) -> dict[str, Any]:
    """Everything the API's /loop and the report's "Closing the loop" section show."""
    return {
        "open_now": open_now(store, filters.brand),
        "total": loop_rows(store, filters, (), min_n),
        "by_team_priority": loop_rows(store, filters, ("team", "priority"), min_n),
        "by_team_touchpoint": loop_rows(store, filters, ("team", "touchpoint"), min_n),
    }


def refresh_gauges(store: Store, window_days: int, now: datetime | None = None) -> int:
    """Set the Prometheus case gauges from ClickHouse (labels team and priority only); returns the series set.

    Series of a team/priority that has nothing any more are set to 0, not dropped,
    so an alert on them resolves instead of going stale.
    """
    since = (now or datetime.now(timezone.utc)) - timedelta(days=window_days)
    current = {(r["team"], r["priority"]): r for r in open_now(store)}
    window = {(r["team"], r["priority"]): r for r in loop_rows(store, Filters(since=since), ("team", "priority"), 1)}
    gauges = (metrics.CASES_OPEN, metrics.CASES_SLA_BREACHED, metrics.CASES_MEDIAN_ACK_SECONDS,
              metrics.CASES_MEDIAN_CLOSE_SECONDS, metrics.LOOP_CLOSE_RATE)  # fmt: skip
    known = {tuple(sample.labels[k] for k in ("team", "priority")) for sample in _samples(metrics.CASES_OPEN)}
    for key in known | set(current) | set(window):
        now_row, win = current.get(key, {}), window.get(key, {})
        metrics.CASES_OPEN.labels(*key).set(now_row.get("open_total", 0))
        metrics.CASES_SLA_BREACHED.labels(*key).set(now_row.get("breached", 0))
        metrics.CASES_MEDIAN_ACK_SECONDS.labels(*key).set(_number(win.get("median_ack_s")))
        metrics.CASES_MEDIAN_CLOSE_SECONDS.labels(*key).set(_number(win.get("median_close_s")))
        metrics.LOOP_CLOSE_RATE.labels(*key).set(_number(win.get("close_rate")) / 100 if win.get("close_rate") is not None else float("nan"))
    return len(known | set(current) | set(window)) * len(gauges)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _samples(gauge: Any) -> list[Any]:
    return [sample for family in gauge.collect() for sample in family.samples]
