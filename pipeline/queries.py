"""CX metrics computed in ClickHouse, with the standard definitions (shared/DESIGN.md).

* NPS: % promoters (9-10) minus % detractors (0-6); passives are 7-8.
* CSAT: % of responses scoring 4 or 5 on 1-5.
* CES: mean on 1-7.
* Net sentiment: % positive minus % negative; plus the mean score in [-1, 1].

Every query reads ``signals FINAL`` so a signal stored twice counts once, and
every result carries ``n``, the count the number rests on. Parameters are
bound (``{name:Type}``), never pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.store import Store

NPS_N = "countIf(score_metric = 'nps')"
METRICS: dict[str, tuple[str, str]] = {  # name -> (value expression, n expression)
    "volume": ("count()", "count()"),
    "nps": (
        f"round(100 * (countIf(score_metric = 'nps' AND score_value >= 9)"
        f" - countIf(score_metric = 'nps' AND score_value <= 6)) / nullIf({NPS_N}, 0), 1)",
        NPS_N,
    ),
    "csat": (
        "round(100 * countIf(score_metric = 'csat' AND score_value >= 4) / nullIf(countIf(score_metric = 'csat'), 0), 1)",
        "countIf(score_metric = 'csat')",
    ),
    "ces": ("round(avgIf(score_value, score_metric = 'ces'), 2)", "countIf(score_metric = 'ces')"),
    "sentiment": (
        "round(100 * (countIf(sentiment_label = 'positive') - countIf(sentiment_label = 'negative'))"
        " / nullIf(countIf(sentiment_label IS NOT NULL), 0), 1)",
        "countIf(sentiment_label IS NOT NULL)",
    ),
}
DIMENSIONS: dict[str, str] = {
    "touchpoint": "touchpoint",  # from ARRAY JOIN below
    "stage": "journey_stage",
    "channel": "channel",
    "source": "source",
    "kind": "kind",
    "brand": "brand",
    "day": "toDate(occurred_at)",
    "week": "toMonday(occurred_at)",
}


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    brand: str | None = None
    channel: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["1"], {}
        if self.since:
            clauses.append("occurred_at >= {since:DateTime64(3, 'UTC')}")
            params["since"] = self.since
        if self.until:
            clauses.append("occurred_at < {until:DateTime64(3, 'UTC')}")
            params["until"] = self.until
        if self.brand:
            clauses.append("brand = {brand:String}")
            params["brand"] = self.brand
        if self.channel:
            clauses.append("channel = {channel:String}")
            params["channel"] = self.channel
        return " AND ".join(clauses), params


def metric_by(store: Store, metric: str, by: str, filters: Filters = Filters(), min_n: int = 30) -> list[dict[str, Any]]:
    """One row per value of ``by``: {by: value, metric: number|None, n: count, low_confidence: bool}."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; choose one of {', '.join(DIMENSIONS)}")
    value, n = METRICS[metric]
    where, params = filters.where()
    join = "ARRAY JOIN touchpoints AS touchpoint" if by == "touchpoint" else ""
    sql = (
        f"SELECT {DIMENSIONS[by]} AS {by}, {value} AS {metric}, {n} AS n "
        f"FROM {{db}}.signals FINAL {join} WHERE {where} GROUP BY {by} HAVING n > 0 ORDER BY n DESC, {by}"
    )
    rows = store.query(sql, params)
    for row in rows:
        row["low_confidence"] = row["n"] < min_n
    return rows


def touchpoint_summary(store: Store, signal_ids: list[str] | None = None, min_n: int = 30) -> list[dict[str, Any]]:
    """Per touchpoint: volume, net sentiment, NPS where scored, and the verbatim closest to the mean mood."""
    scope, params = ("signal_id IN {ids:Array(String)}", {"ids": signal_ids}) if signal_ids is not None else ("1", {})
    sql = f"""
        WITH base AS (
            SELECT touchpoint, text_redacted, sentiment_label, sentiment_score, score_metric, score_value
            FROM {{db}}.signals FINAL ARRAY JOIN touchpoints AS touchpoint WHERE {scope}
        ), means AS (SELECT touchpoint, avg(sentiment_score) AS mean_score FROM base GROUP BY touchpoint)
        SELECT touchpoint, count() AS n,
               {METRICS['sentiment'][0]} AS net_sentiment,
               round(avg(sentiment_score), 3) AS mean_sentiment,
               {METRICS['nps'][0]} AS nps, {NPS_N} AS nps_n,
               argMin(text_redacted, if(length(ifNull(text_redacted, '')) BETWEEN 20 AND 240,
                      abs(sentiment_score - mean_score), 10.0)) AS verbatim
        FROM base JOIN means USING touchpoint
        GROUP BY touchpoint ORDER BY n DESC, touchpoint
    """
    rows = store.query(sql, params)
    for row in rows:
        row["low_confidence"] = row["n"] < min_n
    return rows
