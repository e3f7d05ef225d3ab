"""Alert records in ClickHouse (``alerts``): open while the anomaly lasts, resolved when it ends.

An alert's id is derived from its series, metric and the window end at which
it opened, so two watchers, or one that restarts, agree on it; while it is
open every evaluation rewrites its row (ReplacingMergeTree keeps the newest),
so the open set read back after a restart is exactly what was open before.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from touchpoint.pipeline.alerts.detect import Finding
from touchpoint.pipeline.jsonable import to_json
from touchpoint.pipeline.queries import FINAL_SETTINGS
from touchpoint.pipeline.store import Store

ALERT_NAMESPACE = uuid.UUID("5b0d3f8e-4a7c-4c55-9a51-0a1e7d2f6c16")
UNITS = {"count": "signals", "share": "%", "net": "points"}


@dataclass(frozen=True)
class Alert:
    """One alert as stored; ``explanation`` is written once, when it opens."""

    alert_id: str
    brand: str
    dimension: str  # brand | channel | touchpoint
    value: str
    metric: str  # volume_spike, volume_drop, sentiment, nps, csat, or an emotion
    direction: str  # up | down
    state: str  # open | resolved
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    window_start: datetime
    window_end: datetime
    current: float
    current_low: float
    current_high: float
    expected: float
    expected_low: float
    expected_high: float
    n: int
    baseline_n: int
    baseline_windows: int
    score: float
    p_value: float
    q: float
    summary: str
    explanation: dict[str, Any] = field(default_factory=dict)
    announced: str = ""  # what reached cx.actions: "" nothing yet, "opened" its action, "resolved" its case closed

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.brand, self.dimension, self.value, self.metric)

    def as_json(self) -> dict[str, Any]:
        return to_json(asdict(self))


COLUMNS = tuple(Alert.__dataclass_fields__)


def alert_id(key: tuple[str, str, str, str], opened_at: datetime) -> str:
    """The same series, metric and opening window always give the same id."""
    return str(uuid.uuid5(ALERT_NAMESPACE, "|".join([*key, opened_at.isoformat()])))


def summary(finding: Finding) -> str:
    """One line a person can act on: what moved where, by how much, on how many."""
    brand, dimension, value = finding.series
    o, metric = finding.outcome, finding.metric
    where = brand if dimension == "brand" else f"{dimension} {value} ({brand})"
    unit = UNITS[metric.kind]
    hours = finding.windows.length / timedelta(hours=1)
    return (
        f"{metric.label} at {where}: {o.current:.1f} {unit} in the last {hours:g}h "
        f"[{o.current_low:.1f}, {o.current_high:.1f}], n={o.n}; expected {o.expected:.1f} "
        f"[{o.expected_low:.1f}, {o.expected_high:.1f}] from {len(finding.baseline_slots)} {finding.windows.baseline} "
        f"baseline windows, n={o.baseline_n}; z={o.score:+.1f}, p={o.p_value:.1e}"
    )


def from_finding(finding: Finding, q: float, opened_at: datetime, explanation: dict[str, Any]) -> Alert:
    o = finding.outcome
    start, end = finding.windows.bounds(0)
    return Alert(
        alert_id=alert_id(finding.key, opened_at), brand=finding.series[0], dimension=finding.series[1],
        value=finding.series[2], metric=finding.metric.key, direction=finding.metric.direction, state="open",
        opened_at=opened_at, updated_at=end, resolved_at=None, window_start=start, window_end=end,
        current=o.current, current_low=o.current_low, current_high=o.current_high, expected=o.expected,
        expected_low=o.expected_low, expected_high=o.expected_high, n=o.n, baseline_n=o.baseline_n,
        baseline_windows=len(finding.baseline_slots), score=o.score, p_value=o.p_value, q=q,
        summary=summary(finding), explanation=explanation,
    )  # fmt: skip


def updated(alert: Alert, finding: Finding, q: float) -> Alert:
    """The same alert with the latest numbers (its id, opening, explanation and announcement kept)."""
    fresh = from_finding(finding, q, alert.opened_at, alert.explanation)
    return replace(fresh, alert_id=alert.alert_id, announced=alert.announced)


def resolved(alert: Alert, at: datetime) -> Alert:
    return replace(alert, state="resolved", resolved_at=at, updated_at=at)


def write(store: Store, alerts: list[Alert]) -> None:
    if not alerts:
        return
    rows = [[json.dumps(to_json(a.explanation)) if name == "explanation" else getattr(a, name) for name in COLUMNS] for a in alerts]
    store.client.insert(f"{store.database}.alerts", rows, column_names=list(COLUMNS))


def _alert(row: dict[str, Any]) -> Alert:
    """A stored row as an Alert (ClickHouse returns its UTC times without a zone)."""
    row = {k: v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) and v.tzinfo is None else v for k, v in row.items()}
    row["explanation"] = json.loads(row["explanation"] or "{}")
    return Alert(**row)


def unannounced(store: Store) -> list[Alert]:
    """Alerts whose opening or resolution has not reached cx.actions yet, oldest first."""
    rows = store.query(
        f"SELECT {', '.join(COLUMNS)} FROM {{db}}.alerts FINAL "
        "WHERE (state = 'open' AND announced = '') OR (state = 'resolved' AND announced != 'resolved') "
        "ORDER BY opened_at, alert_id" + FINAL_SETTINGS
    )
    return [_alert(row) for row in rows]


def mark_announced(store: Store, alerts: list[Alert], what: str) -> None:
    """Record what reached cx.actions (same updated_at: the later row wins in ReplacingMergeTree)."""
    write(store, [replace(a, announced=what) for a in alerts])


def open_alerts(store: Store) -> dict[tuple[str, str, str, str], Alert]:
    rows = store.query(f"SELECT {', '.join(COLUMNS)} FROM {{db}}.alerts FINAL WHERE state = 'open'" + FINAL_SETTINGS)
    return {alert.key: alert for alert in map(_alert, rows)}


def recent_alerts(store: Store, since: datetime | None = None, brand: str | None = None, limit: int = 50) -> list[Alert]:
    """Open alerts first, then the most recently opened; ``since`` keeps alerts open or updated after it.
    A store not migrated to the alerts table yet has none."""
    if not store.query("EXISTS TABLE {db}.alerts")[0]["result"]:
        return []
    clauses, params = ["1"], {"limit": limit}
    if since is not None:
        clauses.append("(state = 'open' OR updated_at >= {since:DateTime64(3, 'UTC')})")
        params["since"] = since
    if brand:
        clauses.append("brand = {brand:String}")
        params["brand"] = brand
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM {{db}}.alerts FINAL WHERE {' AND '.join(clauses)} "
        "ORDER BY state = 'open' DESC, opened_at DESC, alert_id LIMIT {limit:UInt32}"
    )
    return [_alert(row) for row in store.query(sql + FINAL_SETTINGS, params)]
