"""CX metric queries: ClickHouse computes every number, Python only shapes result rows.

Every query reads ``signals FINAL``, so a signal stored twice counts once, and
every result row carries ``n``, the count the number rests on, plus
``low_confidence`` when ``n`` is below the configured minimum (flagged, never
hidden). Parameters are bound server-side (``{name:Type}``), never pasted into
SQL; only names checked against fixed tables (metrics, dimensions) become SQL.
Definitions live in pipeline/metrics_sql.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence

from touchpoint.pipeline.metrics_sql import DIMENSIONS, METRICS, PRIMARY, TEXT, TOUCHPOINT_VIEWS, check_names, view_of
from touchpoint.pipeline.store import Store

TIME_DIMS = ("day", "week")
STAMP = "DateTime64(3, 'UTC')"
# Exact for any partition key that is a function of the sorting key (signal_id: every version of a signal
# lives in one partition), and lets FINAL skip partitions that are already merged.
FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"
UNACTIONABLE = ("other", "untagged")  # no team owns these: never a "top negative touchpoint"


@dataclass(frozen=True)
class Filters:
    """Which signals a metric covers: ``since <= occurred_at < until``, one brand, one channel."""

    since: datetime | None = None
    until: datetime | None = None
    brand: str | None = None
    channel: str | None = None

    def where(self, time_column: str = "occurred_at") -> tuple[str, dict[str, Any]]:
        clauses, params = ["1"], {}
        if self.since:
            clauses.append(f"{time_column} >= {{since:{STAMP}}}")
            params["since"] = self.since
        if self.until:
            clauses.append(f"{time_column} < {{until:{STAMP}}}")
            params["until"] = self.until
        if self.brand:
            clauses.append("brand = {brand:String}")
            params["brand"] = self.brand
        if self.channel:
            clauses.append("channel = {channel:String}")
            params["channel"] = self.channel
        return " AND ".join(clauses), params

    def previous(self) -> "Filters":
        """The period of the same length just before this one (needs ``since``)."""
        if self.since is None:
            raise ValueError("a change versus the previous period needs a start: pass since (e.g. 7d or 2026-11-01)")
        until = self.until or datetime.now(timezone.utc)
        if until <= self.since:
            raise ValueError(f"until ({until:%Y-%m-%d %H:%M}) must be after since ({self.since:%Y-%m-%d %H:%M})")
        return replace(self, since=self.since - (until - self.since), until=self.since)


def _query(store: Store, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return store.query(sql + FINAL_SETTINGS, params)


def _flag(rows: list[dict[str, Any]], min_n: int) -> list[dict[str, Any]]:
    for row in rows:
        row["low_confidence"] = row["n"] < min_n
    return rows


def metric_sql(
    metric: str, dims: Sequence[str], where: str, split_period: bool = False, view: str | None = None
) -> str:  # fmt: skip
    """SQL for one metric grouped by ``dims`` (and by current/previous period when asked); by
    touchpoint in ``view`` (metrics_sql.VIEWS; default: the metric's own)."""
    check_names(metric, tuple(dims), view)
    m = METRICS[metric]
    touchpoint, join = TOUCHPOINT_VIEWS[view_of(metric, view)]
    keys = [f"{touchpoint if d == 'touchpoint' else DIMENSIONS[d]} AS {d}" for d in dims]
    group = list(dims)
    if split_period:
        keys.append(f"occurred_at >= {{current_since:{STAMP}}} AS is_current")
        group.append("is_current")
    join = join if "touchpoint" in dims else ""
    source = f"FROM {{db}}.signals FINAL {join} WHERE {where}"
    time_first = [d for d in dims if d in TIME_DIMS]
    if metric == "emotions":
        inner = (
            f"SELECT {', '.join(keys)}, countIf({TEXT}) AS n, "
            "sumMap(arrayMap(e -> toString(e), arrayDistinct(emotions)), "
            "arrayMap(e -> toUInt64(1), arrayDistinct(emotions))) AS m "
            f"{source} GROUP BY {', '.join(group)} HAVING n > 0"
        )
        order = ", ".join([*group, "count DESC", "emotion"])
        return (
            f"SELECT {', '.join(group)}, emotion, round(100 * k / n, 1) AS emotions, toUInt64(k) AS count, n "
            f"FROM ({inner}) ARRAY JOIN m.1 AS emotion, m.2 AS k ORDER BY {order}"
        )
    columns = ", ".join(f"{expr} AS {name}" for name, expr in m.columns)
    order = ", ".join([*time_first, "n DESC", *group]) if not time_first else ", ".join(group)
    return f"SELECT {', '.join(keys)}, {columns}, {m.n} AS n {source} GROUP BY {', '.join(group)} HAVING n > 0 ORDER BY {order}"


def _label_view(rows: list[dict[str, Any]], metric: str, dims: Sequence[str], view: str | None) -> list[dict[str, Any]]:
    """By touchpoint, every row says which view it counts in (metrics_sql.VIEWS)."""
    if "touchpoint" in dims:
        for row in rows:
            row["view"] = view_of(metric, view)
    return rows


def metric_rows(
    store: Store, metric: str, dims: Sequence[str], filters: Filters = Filters(), min_n: int = 30,
    compare: bool = False, view: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of ``metric`` grouped by ``dims``; with ``compare``, each row also gets
    ``previous``, ``previous_n`` and ``change`` versus the previous period of the same length.
    By touchpoint, ``view`` picks primary or mentions (default: the metric's own) and each row names it."""
    if not compare:
        where, params = filters.where()
        rows = _flag(_query(store, metric_sql(metric, dims, where, view=view), params), min_n)
        return _label_view(rows, metric, dims, view)
    if any(d in TIME_DIMS for d in dims):
        raise ValueError("a change versus the previous period needs a dimension other than day or week")
    previous = filters.previous()
    span = Filters(previous.since, filters.until or datetime.now(timezone.utc), filters.brand, filters.channel)
    where, params = span.where()
    params["current_since"] = filters.since
    rows = _query(store, metric_sql(metric, dims, where, split_period=True, view=view), params)
    key_names = [*dims, "emotion"] if metric == "emotions" else list(dims)
    before = {tuple(r[k] for k in key_names): r for r in rows if not r["is_current"]}
    result = []
    for row in rows:
        if not row.pop("is_current"):
            continue
        old = before.get(tuple(row[k] for k in key_names))
        old_value = old[metric] if old else None
        row["previous"] = old_value
        row["previous_n"] = old["n"] if old else 0
        row["change"] = None if old_value is None or row[metric] is None else round(row[metric] - old_value, 2)
        result.append(row)
    return _label_view(_flag(result, min_n), metric, dims, view)


def metric_by(
    store: Store, metric: str, by: str, filters: Filters = Filters(), min_n: int = 30, compare: bool = False,
    view: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per value of ``by``: {by: value, metric: number|None, n: count, low_confidence: bool, ...}."""
    return metric_rows(store, metric, (by,), filters, min_n, compare, view)


def nps_by_primary(store: Store, where: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """NPS per primary touchpoint, for views that list touchpoints by mention but show scores
    (each response counts once, under its primary touchpoint, as metric_sql's default)."""
    return {r["touchpoint"]: r for r in _query(store, metric_sql("nps", ("touchpoint",), where, view=PRIMARY), params)}


def _add_nps(rows: list[dict[str, Any]], scores: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        found = scores.get(row["touchpoint"])
        row["nps"], row["nps_n"] = (found["nps"], found["n"]) if found else (None, 0)
    return rows


def top_negative(
    store: Store, filters: Filters = Filters(), min_n: int = 30, limit: int = 5, verbatims: int = 3
) -> list[dict[str, Any]]:
    """Touchpoints where customers are least happy, worst net sentiment first (reliable ones
    before low-confidence ones; "other" is left out), each with representative redacted verbatims: negative texts
    whose score is closest to that touchpoint's median negative score (typical, not extreme). Sentiment counts
    every touchpoint a text mentions; ``nps``/``nps_n`` count each response once, at its primary touchpoint."""
    where, params = filters.where()
    sent = METRICS["sentiment"]
    columns = ", ".join(f"{expr} AS {name}" for name, expr in sent.columns)
    sql = f"""
        SELECT touchpoint, {columns}, {sent.n} AS n
        FROM {{db}}.signals FINAL ARRAY JOIN touchpoints AS touchpoint
        WHERE {where} AND touchpoint NOT IN {{unactionable:Array(String)}}
        GROUP BY touchpoint HAVING negative > 0
        ORDER BY n < {{min_n:UInt32}}, sentiment, n DESC, touchpoint LIMIT {{limit:UInt32}}
    """
    rows = _flag(_query(store, sql, {**params, "min_n": min_n, "limit": limit, "unactionable": list(UNACTIONABLE)}), min_n)
    rows = _add_nps(rows, nps_by_primary(store, where, params)) if rows else rows
    if not rows or verbatims <= 0:
        return rows
    quotes_sql = f"""
        SELECT touchpoint, text, score, channel, at FROM (
            SELECT touchpoint, text, score, channel, at, median(score) OVER (PARTITION BY touchpoint) AS mid FROM (
                SELECT touchpoint, text_redacted AS text, min(sentiment_score) AS score,
                       max(occurred_at) AS at, any(channel) AS channel
                FROM {{db}}.signals FINAL ARRAY JOIN touchpoints AS touchpoint
                WHERE {where} AND touchpoint IN {{touchpoints:Array(String)}} AND sentiment_label = 'negative'
                  AND text_redacted IS NOT NULL AND length(text_redacted) BETWEEN 15 AND 400
                GROUP BY touchpoint, text
            )
        )
        ORDER BY touchpoint, abs(score - mid), at DESC, text LIMIT {{k:UInt32}} BY touchpoint
    """  # one scan: the median comes from a window over the grouped negatives
    quotes = _query(store, quotes_sql, {**params, "touchpoints": [r["touchpoint"] for r in rows], "k": verbatims})
    for row in rows:
        row["verbatims"] = [
            {"text": q["text"], "sentiment_score": round(float(q["score"]), 3), "channel": q["channel"], "occurred_at": q["at"]}
            for q in quotes
            if q["touchpoint"] == row["touchpoint"]
        ]
    return rows


JOURNEY_COLUMNS = (
    "signal_id", "occurred_at", "kind", "channel", "source", "brand", "touchpoints", "journey_stage",
    "score_metric", "score_value", "sentiment_label", "sentiment_score", "emotions", "text_redacted",
)  # fmt: skip


def journey(store: Store, customer_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every signal of one customer across channels, oldest first (redacted text only)."""
    sql = (
        f"SELECT {', '.join(JOURNEY_COLUMNS)} FROM {{db}}.signals FINAL "
        "WHERE customer_id = {customer_id:String} ORDER BY occurred_at, signal_id LIMIT {limit:UInt32}"
    )
    return _query(store, sql, {"customer_id": customer_id, "limit": limit})


def data_range(store: Store, filters: Filters = Filters()) -> dict[str, Any]:
    """First and last signal time and the count, within ``filters``."""
    where, params = filters.where()
    sql = f"SELECT min(occurred_at) AS first, max(occurred_at) AS last, count() AS n FROM {{db}}.signals FINAL WHERE {where}"
    return _query(store, sql, params)[0]


def touchpoint_summary(store: Store, signal_ids: list[str] | None = None, min_n: int = 30) -> list[dict[str, Any]]:
    """Per touchpoint mentioned: volume, net sentiment and the verbatim closest to the mean mood; NPS
    where scored, each response once at its primary touchpoint."""
    scope, params = ("signal_id IN {ids:Array(String)}", {"ids": signal_ids}) if signal_ids is not None else ("1", {})
    net = dict(METRICS["sentiment"].columns)["sentiment"]
    sql = f"""
        WITH base AS (
            SELECT touchpoint, text_redacted, sentiment_label, sentiment_score
            FROM {{db}}.signals FINAL ARRAY JOIN touchpoints AS touchpoint WHERE {scope}
        ), means AS (SELECT touchpoint, avg(sentiment_score) AS mean_score FROM base GROUP BY touchpoint)
        SELECT touchpoint, count() AS n,
               {net} AS net_sentiment,
               round(avg(sentiment_score), 3) AS mean_sentiment,
               argMin(text_redacted, if(length(ifNull(text_redacted, '')) BETWEEN 20 AND 240,
                      abs(sentiment_score - mean_score), 10.0)) AS verbatim
        FROM base JOIN means USING touchpoint
        GROUP BY touchpoint ORDER BY n DESC, touchpoint
    """
    return _flag(_add_nps(_query(store, sql, params), nps_by_primary(store, scope, params)), min_n)
