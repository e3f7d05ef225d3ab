"""The CX metric definitions as ClickHouse SQL expressions (shared/DESIGN.md).

* NPS: % promoters (9-10) minus % detractors (0-6); passives are 7-8; -100..100.
* CSAT: % of responses scoring 4 or 5 on 1-5 (top-2-box).
* CES: mean on 1-7 (higher = easier), and % of responses scoring 5-7.
* Net sentiment: % positive minus % negative; mean sentiment score in [-1, 1].
* Volume: signals. Emotions: % of signals with text that carry each emotion.

Each metric names the count its number rests on (``n``): survey responses of
that metric for nps/csat/ces, signals with text for sentiment/emotions, all
signals for volume. Expressions are aggregates over ``signals FINAL`` rows, so
this module holds definitions only; pipeline/queries.py builds the queries.

Attribution by touchpoint comes in two named views (VIEWS). *primary*: each
signal counts once, under its primary touchpoint (the survey's hint when the
taxonomy knows it, else the top tag), so ``n`` over touchpoints adds up to the
responses; the default for the scores (NPS, CSAT, CES). *mentions*: each signal
counts under every touchpoint its text mentions; the default for sentiment,
emotions and volume, where a text about two touchpoints speaks of both.
"""

from __future__ import annotations

from dataclasses import dataclass

NPS = "score_metric = 'nps'"
CSAT = "score_metric = 'csat'"
CES = "score_metric = 'ces'"
TEXT = "sentiment_label IS NOT NULL"
PROMOTER = f"{NPS} AND score_value >= 9"
DETRACTOR = f"{NPS} AND score_value <= 6"
CSAT_SATISFIED = f"{CSAT} AND score_value >= 4"
POSITIVE = "sentiment_label = 'positive'"
NEGATIVE = "sentiment_label = 'negative'"


def pct(numerator: str, denominator: str) -> str:
    """A percentage rounded to 0.1, NULL (not 0) when there is nothing to divide by."""
    return f"round(100 * ({numerator}) / nullIf({denominator}, 0), 1)"


PRIMARY, MENTIONS = "primary", "mentions"
VIEWS: dict[str, str] = {
    PRIMARY: "each signal counts once, under its primary touchpoint: the survey's touchpoint hint when the "
    "taxonomy knows it, else the top model tag ('untagged' without one); n over touchpoints adds up to the signals",
    MENTIONS: "each signal counts under every touchpoint its text mentions (every model tag, 'untagged' without "
    "one); a text tagged twice counts twice, so n over touchpoints can exceed the signals",
}


@dataclass(frozen=True)
class Metric:
    """One metric: its output columns (the first is named like the metric), its ``n``, and the
    touchpoint view it is shown in by default."""

    name: str
    n: str
    columns: tuple[tuple[str, str], ...]
    description: str
    view: str = MENTIONS


SCORED = (
    "by touchpoint, each response counts once, under its primary touchpoint "
    "(view=primary, the default; view=mentions counts it under every tag)"
)
MENTIONED = (
    "by touchpoint, a signal counts under every touchpoint it mentions "
    "(view=mentions, the default; view=primary counts it once)"
)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "volume", "count()", (("volume", "count()"),), f"signals (every channel, with or without text); {MENTIONED}"
        ),
        Metric(
            "nps",
            f"countIf({NPS})",
            (
                ("nps", pct(f"countIf({PROMOTER}) - countIf({DETRACTOR})", f"countIf({NPS})")),
                ("promoters", f"countIf({PROMOTER})"),
                ("passives", f"countIf({NPS} AND score_value > 6 AND score_value < 9)"),
                ("detractors", f"countIf({DETRACTOR})"),
            ),
            f"Net Promoter Score: % promoters (9-10) minus % detractors (0-6), -100..100; {SCORED}",
            PRIMARY,
        ),
        Metric(
            "csat",
            f"countIf({CSAT})",
            (("csat", pct(f"countIf({CSAT_SATISFIED})", f"countIf({CSAT})")),),
            f"CSAT: % of 1-5 responses scoring 4 or 5; {SCORED}",
            PRIMARY,
        ),
        Metric(
            "ces",
            f"countIf({CES})",
            (
                ("ces", f"round(avgIf(score_value, {CES}), 2)"),
                ("ces_easy_pct", pct(f"countIf({CES} AND score_value >= 5)", f"countIf({CES})")),
            ),
            f"Customer Effort Score: mean on 1-7 (higher = easier), and % scoring 5-7; {SCORED}",
            PRIMARY,
        ),
        Metric(
            "sentiment",
            f"countIf({TEXT})",
            (
                ("sentiment", pct(f"countIf({POSITIVE}) - countIf({NEGATIVE})", f"countIf({TEXT})")),
                ("sentiment_mean", f"round(avgIf(sentiment_score, {TEXT}), 3)"),
                ("positive", f"countIf({POSITIVE})"),
                ("negative", f"countIf({NEGATIVE})"),
            ),
            f"net sentiment: % positive minus % negative; sentiment_mean in [-1, 1]; {MENTIONED}",
        ),
        Metric(
            "emotions",
            f"countIf({TEXT})",
            (),  # one row per emotion: see queries.emotion_sql
            f"% of signals with text that carry each emotion (one row per emotion); {MENTIONED}",
        ),
    )
}  # fmt: skip

# Signals with no touchpoint tag still count, under "untagged", so totals add up.
TOUCHPOINT_JOIN = "ARRAY JOIN if(empty(touchpoints), ['untagged'], CAST(touchpoints, 'Array(String)')) AS touchpoint"
# The primary touchpoint, with its fallback for rows stored before it existed: an ALIAS column
# (schemas/clickhouse/006_primary_touchpoint.sql), so SQL written by hand and the dashboards share the rule.
PRIMARY_TOUCHPOINT = "attributed_touchpoint"
# view -> (the expression named `touchpoint`, the clause that joins it in)
TOUCHPOINT_VIEWS: dict[str, tuple[str, str]] = {
    PRIMARY: (PRIMARY_TOUCHPOINT, ""),
    MENTIONS: ("touchpoint", TOUCHPOINT_JOIN),
}

DIMENSIONS: dict[str, str] = {
    "touchpoint": "touchpoint",
    "stage": "journey_stage",
    "channel": "channel",
    "source": "source",
    "kind": "kind",
    "brand": "brand",
    "day": "toDate(occurred_at)",
    "week": "toMonday(occurred_at)",
    "total": "'all'",  # one row over everything (headline numbers)
}


def check_names(metric: str, dims: tuple[str, ...], view: str | None = None) -> None:
    """Raise ValueError naming the valid choices (CLI and API show it as is)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    for dim in dims:
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dim!r}; choose one of {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions must differ (got {', '.join(dims)})")
    if view is not None and view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if view is not None and "touchpoint" not in dims:
        raise ValueError("a view (primary or mentions) applies only when grouping by touchpoint")


def view_of(metric: str, view: str | None = None) -> str:
    """The touchpoint view a metric is shown in: the one asked for, else the metric's default."""
    return view or METRICS[metric].view
