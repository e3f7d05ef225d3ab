"""`touchpoint report`: the CX dashboard as one self-contained HTML file.

ClickHouse computes every number (pipeline/queries.py); this module gathers
them into one JSON document and embeds it, with inline CSS and a small vanilla
JavaScript SVG renderer, into templates/report.html. Nothing is fetched when
the file is opened: it works offline, attached to an email or on a share.
Every number on the page shows the count it rests on, and the page says in
print what it covers: the period of its charts, the window of its headline
cards, and how signals are attributed to touchpoints (metrics_sql.VIEWS).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts.ledger import recent_alerts
from touchpoint.pipeline.jsonable import to_json
from touchpoint.pipeline.loop_metrics import loop_summary
from touchpoint.pipeline.metrics_sql import METRICS, VIEWS
from touchpoint.pipeline.queries import Filters, data_range, metric_by, metric_rows, top_negative
from touchpoint.pipeline.store import Store

HEADLINE = ("nps", "csat", "ces", "sentiment", "volume")
HEATMAP_TOUCHPOINTS = 12
HEATMAP_MAX_DAYS = 24  # a heatmap by day has room for its numbers up to this many columns; longer ones go by week
RECENT_ALERTS = timedelta(days=14)  # besides open ones, alerts updated this long before the data's end
PLACEHOLDER = "/*__REPORT_DATA__*/null"


def _naive_utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def headline_window(start: datetime, end: datetime) -> Filters:
    """The latest 28 days (or half the data's span when shorter), compared with the same length before."""
    length = min(timedelta(days=28), max(timedelta(hours=1), (end - start) / 2))
    return Filters(since=end - length, until=end)


def brand_comparison(store: Store, filters: Filters, min_n: int) -> dict[str, list[dict[str, Any]]] | None:
    """Every headline metric by brand, over the whole period; None for one brand (or a report of one brand)."""
    if filters.brand or len(metric_by(store, "volume", "brand", filters, min_n)) < 2:
        return None
    return {metric: metric_by(store, metric, "brand", filters, min_n) for metric in HEADLINE}


def report_data(store: Store, filters: Filters = Filters(), min_n: int = 30) -> dict[str, Any]:
    """Every number the dashboard shows, each with its n, as one JSON-ready dict."""
    span = data_range(store, filters)
    data: dict[str, Any] = {
        "generated_at": datetime.now(timezone.utc),
        "filters": {"since": filters.since, "until": filters.until, "brand": filters.brand, "channel": filters.channel},
        "min_responses": min_n,
        "signals": span["n"],
        "definitions": {name: m.description for name, m in METRICS.items()},
        "views": VIEWS,  # how signals are attributed to touchpoints
        "loop": loop_summary(store, filters, min_n),  # "Closing the loop": cases, not signals
    }
    if not span["n"]:
        return data
    first, last = _naive_utc(span["first"]), _naive_utc(span["last"])
    start, end = filters.since or first, filters.until or last + timedelta(seconds=1)
    grain = "week" if (end - start) > timedelta(days=45) else "day"
    heat_grain = "week" if (end - start) > timedelta(days=HEATMAP_MAX_DAYS) else "day"
    window = headline_window(start, end)
    scoped = Filters(window.since, window.until, filters.brand, filters.channel)
    headline = {}
    for metric in HEADLINE:
        rows = metric_rows(store, metric, ("total",), scoped, min_n, compare=True)
        headline[metric] = rows[0] if rows else None
    data.update(
        first=first, last=last, grain=grain, heat_grain=heat_grain,
        period={"since": start, "until": end},  # every chart and table
        window={"since": window.since, "until": window.until, "previous_since": window.previous().since},  # the cards
        headline=headline,
        trend={m: metric_by(store, m, grain, filters, min_n) for m in ("nps", "csat", "ces", "sentiment", "volume")},
        touchpoints=metric_by(store, "sentiment", "touchpoint", filters, min_n),  # mentions
        touchpoint_nps=metric_by(store, "nps", "touchpoint", filters, min_n),  # primary
        heatmap=metric_rows(store, "sentiment", ("touchpoint", heat_grain), filters, min_n),  # mentions
        nps_heatmap=metric_rows(store, "nps", ("touchpoint", heat_grain), filters, min_n),  # primary
        brands=brand_comparison(store, filters, min_n),
        channels=metric_rows(store, "volume", ("channel", "kind"), filters, min_n),
        kinds=metric_by(store, "volume", "kind", filters, min_n),
        emotions=metric_by(store, "emotions", "total", filters, min_n),
        top_negative=top_negative(store, filters, min_n, limit=6, verbatims=3),
        alerts=[a.as_json() for a in recent_alerts(store, end - RECENT_ALERTS, filters.brand, limit=20)],
    )  # fmt: skip
    return data


def render_report(data: dict[str, Any]) -> str:
    """The template with ``data`` embedded as JSON (safe inside a <script> element)."""
    template = resources.files("touchpoint.pipeline").joinpath("templates/report.html").read_text(encoding="utf-8")
    payload = json.dumps(to_json(data), ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" inside
    if PLACEHOLDER not in template:
        raise RuntimeError("templates/report.html lost its data placeholder; restore " + PLACEHOLDER)
    return template.replace(PLACEHOLDER, payload)


def write_report(settings: Settings, out: Path | None = None, filters: Filters = Filters()) -> Path:
    """Query the store and write the dashboard; returns the file's path."""
    store = Store.from_settings(settings)
    try:
        data = report_data(store, filters, settings.min_responses)
    finally:
        store.close()
    return save_report(data, Path(out) if out else settings.data_dir / "report.html")


def save_report(data: dict[str, Any], target: Path) -> Path:
    """Write the dashboard for ``data`` (from :func:`report_data`, here or from a running worker)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(data), encoding="utf-8")
    return target
