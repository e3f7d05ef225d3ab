"""Every CX metric, computed by ClickHouse (chdb), against plain Python over the same rows."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from tests.cx_rows import T0, signal, store_signals
from touchpoint.pipeline.queries import Filters, journey, metric_by, metric_rows, top_negative

ROUNDING = 0.051  # SQL rounds to 0.1; the reference does not round
TOUCHPOINTS = ("delivery", "checkout", "mobile_app", "billing")
CHANNELS = ("survey", "chat", "review", "social")


# --- the reference: plain Python, written from shared/DESIGN.md, not from the SQL ---------------

def nps(values: list[float]) -> float | None:
    if not values:
        return None
    return 100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values)


def csat(values: list[float]) -> float | None:
    return 100 * sum(v >= 4 for v in values) / len(values) if values else None


def ces(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ces_easy(values: list[float]) -> float | None:
    return 100 * sum(v >= 5 for v in values) / len(values) if values else None


def net_sentiment(labels: list[str]) -> float | None:
    if not labels:
        return None
    return 100 * (labels.count("positive") - labels.count("negative")) / len(labels)


def primary_of(record: dict[str, Any]) -> str:
    """shared/DESIGN.md: the survey's hint when given (and the taxonomy knows it: the tagger kept it), else the
    top tag. Stored by the enrich stage; rows from before it was stored hold None and get the same rule."""
    if record.get("primary_touchpoint"):
        return record["primary_touchpoint"]
    hint, tags = record["touchpoint_hint"], record["touchpoints"]
    return hint if hint in tags else (tags[0] if tags else "untagged")


def key_of(record: dict[str, Any], by: str, view: str = "mentions") -> list[Any]:
    """The values of dimension ``by`` a record counts under (every tag for touchpoints in the mentions view)."""
    at: datetime = record["occurred_at"]
    if by == "touchpoint":
        return [primary_of(record)] if view == "primary" else list(record["touchpoints"]) or ["untagged"]
    if by == "day":
        return [at.date()]
    if by == "week":
        return [at.date() - timedelta(days=at.weekday())]
    return [{"stage": record["journey_stage"]}.get(by, record.get(by))]


def grouped(
    records: list[dict[str, Any]], by: str, pick: Callable[[dict[str, Any]], Any], view: str = "mentions"
) -> dict[Any, list[Any]]:  # fmt: skip
    groups: dict[Any, list[Any]] = defaultdict(list)
    for record in records:
        value = pick(record)
        if value is not None:
            for key in key_of(record, by, view):
                groups[key].append(value)
    return groups


def score_of(metric: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r["score"]["value"] if r["score"] and r["score"]["metric"] == metric else None


def as_map(rows: list[dict[str, Any]], by: str) -> dict[Any, dict[str, Any]]:
    return {row[by]: row for row in rows}


def close(actual: float | None, expected: float | None, tolerance: float = ROUNDING) -> bool:
    if expected is None:
        return actual is None
    return actual is not None and abs(actual - expected) <= tolerance


# --- a realistic mixed data set --------------------------------------------------------------------

def mixed_records(count: int = 240, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        channel = rng.choice(CHANNELS)
        metric = rng.choice(["nps", "csat", "ces"]) if channel == "survey" else None
        value = {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5), "ces": rng.randint(1, 7)}.get(metric)
        label = rng.choice(["positive", "negative", "neutral", None])
        tps = rng.sample(TOUCHPOINTS, rng.choice([0, 1, 1, 2]))
        emotions = rng.sample(["anger", "joy", "confusion"], rng.choice([0, 0, 1, 2])) if label else []
        # a survey's hint is not always the top tag; half the rows were stored before primary_touchpoint existed
        hint = tps[-1] if tps and i % 3 == 0 else ("pricing" if i % 7 == 0 else None)  # pricing: not among the tags
        primary = primary_of({"touchpoint_hint": hint, "touchpoints": tps}) if i % 2 and tps else None
        records.append(signal(
            i, metric=metric, value=value, label=label, touchpoints=tps, emotions=emotions,
            channel=channel, kind="indirect" if channel in ("review", "social") else "direct",
            source=rng.choice(["typeform", "trustpilot", "x"]), brand=rng.choice(["acme", "globex"]),
            journey_stage=rng.choice(["purchase", "support"]), at=T0 + timedelta(hours=rng.randint(0, 24 * 20)),
            touchpoint_hint=hint, primary_touchpoint=primary,
        ))  # fmt: skip
    return records


@pytest.fixture
def mixed(store) -> list[dict[str, Any]]:
    return store_signals(store, mixed_records())


DIMS = ["touchpoint", "stage", "channel", "source", "kind", "brand", "day", "week"]


def test_survey_metrics_match_python_for_every_dimension(store, mixed) -> None:
    cases = [(by, *m) for by in DIMS for m in (("nps", nps, "nps"), ("csat", csat, "csat"), ("ces", ces, "ces"))]
    for by, metric, reference, column in cases:
        expected = grouped(mixed, by, score_of(metric), view="primary")  # scores: once, at the primary touchpoint
        rows = as_map(metric_by(store, metric, by, min_n=3), by)
        assert set(rows) == set(expected), (metric, by)
        for key, values in expected.items():
            row = rows[key]
            assert row["n"] == len(values), (metric, by, key)
            tolerance = 0.0051 if metric == "ces" else ROUNDING
            assert close(row[column], reference(values), tolerance), (metric, by, key, row, values)
            assert row["low_confidence"] is (len(values) < 3)
            if metric == "ces":
                assert close(row["ces_easy_pct"], ces_easy(values))


def test_sentiment_and_volume_match_python_for_every_dimension(store, mixed) -> None:
    for by in DIMS:
        check_sentiment_and_volume(store, mixed, by)


def check_sentiment_and_volume(store, mixed: list[dict[str, Any]], by: str) -> None:
    labels = grouped(mixed, by, lambda r: r["sentiment_label"])
    scores = grouped(mixed, by, lambda r: r["sentiment_score"])
    sentiment = as_map(metric_by(store, "sentiment", by), by)
    assert set(sentiment) == set(labels)
    for key, values in labels.items():
        row = sentiment[key]
        assert row["n"] == len(values)
        assert close(row["sentiment"], net_sentiment(values))
        assert close(row["sentiment_mean"], sum(scores[key]) / len(scores[key]), 0.00051)
        assert (row["positive"], row["negative"]) == (values.count("positive"), values.count("negative"))
    volume = as_map(metric_by(store, "volume", by), by)
    everything = grouped(mixed, by, lambda r: 1)
    assert {k: (r["volume"], r["n"]) for k, r in volume.items()} == {k: (len(v), len(v)) for k, v in everything.items()}


def test_touchpoint_volume_counts_a_multi_tagged_signal_under_each_touchpoint(store, mixed) -> None:
    volume = as_map(metric_by(store, "volume", "touchpoint"), "touchpoint")
    assert sum(r["n"] for r in volume.values()) == sum(max(1, len(r["touchpoints"])) for r in mixed)
    assert volume["untagged"]["n"] == sum(not r["touchpoints"] for r in mixed)


def test_emotion_shares_match_python(store, mixed) -> None:
    for by in ("touchpoint", "channel", "total"):
        check_emotions(store, mixed, by)


def check_emotions(store, mixed: list[dict[str, Any]], by: str) -> None:
    with_text = [r for r in mixed if r["sentiment_label"] is not None]
    rows = metric_by(store, "emotions", by)
    expected: dict[tuple[Any, str], tuple[int, int]] = {}
    totals = grouped(with_text, by, lambda r: 1) if by != "total" else {"all": [1] * len(with_text)}
    for key, ones in totals.items():
        members = [r for r in with_text if by == "total" or key in key_of(r, by)]
        for emotion in {e for r in members for e in r["emotions"]}:
            expected[(key, emotion)] = (sum(emotion in r["emotions"] for r in members), len(ones))
    assert {(r[by], r["emotion"]): (r["count"], r["n"]) for r in rows} == expected
    for row in rows:
        assert close(row["emotions"], 100 * row["count"] / row["n"])


def test_no_responses_at_all_give_no_rows_for_any_metric(store) -> None:
    for metric in ("volume", "nps", "csat", "ces", "sentiment", "emotions"):
        for by in ("touchpoint", "day", "total"):
            assert metric_by(store, metric, by) == []
    assert top_negative(store) == []
    assert journey(store, "nobody") == []


def test_a_metric_without_its_own_responses_has_no_row_not_zero(store) -> None:
    store_signals(store, [signal(i, metric="nps", value=9) for i in range(3)])
    assert metric_by(store, "csat", "channel") == []
    assert metric_by(store, "ces", "channel") == []
    assert metric_by(store, "nps", "channel")[0]["nps"] == 100.0


def test_all_passives_is_an_nps_of_zero(store) -> None:
    store_signals(store, [signal(i, metric="nps", value=v) for i, v in enumerate([7, 8, 7, 8, 8])])
    [row] = metric_by(store, "nps", "total")
    assert (row["nps"], row["n"], row["passives"], row["promoters"], row["detractors"]) == (0.0, 5, 5, 0, 0)


SCALE_CASES = [
    ("nps", [0, 0, 0], "nps", -100.0), ("nps", [10, 10], "nps", 100.0), ("nps", [0, 10], "nps", 0.0),
    ("nps", [6, 9], "nps", 0.0), ("nps", [6, 7, 8, 9], "nps", 0.0),
    ("csat", [1, 1], "csat", 0.0), ("csat", [5, 5], "csat", 100.0), ("csat", [3, 4], "csat", 50.0),
    ("ces", [1, 1], "ces", 1.0), ("ces", [7, 7], "ces", 7.0), ("ces", [1, 7], "ces", 4.0),
    ("ces", [4, 5], "ces_easy_pct", 50.0), ("ces", [1, 4], "ces_easy_pct", 0.0), ("ces", [5, 7], "ces_easy_pct", 100.0),
]  # fmt: skip


def test_scores_at_the_scale_limits_and_cut_offs(store) -> None:
    """One brand per case, so one table holds every case."""
    records = []
    for case, (metric, values, _, _) in enumerate(SCALE_CASES):
        records += [signal(100 * case + i, metric=metric, value=v, brand=f"case{case}") for i, v in enumerate(values)]
    store_signals(store, records)
    for case, (metric, values, column, expected) in enumerate(SCALE_CASES):
        [row] = metric_by(store, metric, "brand", Filters(brand=f"case{case}"))
        assert (row[column], row["n"]) == (expected, len(values)), SCALE_CASES[case]


def test_signals_delivered_twice_count_once_everywhere(store) -> None:
    records = store_signals(store, mixed_records(60, seed=3))
    store_signals(store, records)  # at-least-once redelivery of everything
    store_signals(store, records[:10])  # and a third time for some
    fresh = [dict(r) for r in records]
    by_channel = as_map(metric_by(store, "volume", "channel"), "channel")
    assert sum(r["n"] for r in by_channel.values()) == len(fresh)
    for metric, reference in (("nps", nps), ("csat", csat), ("ces", ces)):
        expected = grouped(fresh, "total", score_of(metric)).get(None, [])
        rows = metric_by(store, metric, "total")
        assert (rows[0]["n"] if rows else 0) == len(expected)
    labels = [r["sentiment_label"] for r in fresh if r["sentiment_label"]]
    [row] = metric_by(store, "sentiment", "total")
    assert row["n"] == len(labels) and close(row["sentiment"], net_sentiment(labels))
    top = top_negative(store, min_n=1, limit=10)
    negatives = grouped([r for r in fresh if r["sentiment_label"] == "negative"], "touchpoint", lambda r: 1)
    assert {r["touchpoint"]: r["negative"] for r in top} == {k: len(v) for k, v in negatives.items() if k != "untagged"}


def test_a_re_enriched_signal_replaces_the_old_row(store) -> None:
    first = signal(1, label="negative")
    store_signals(store, [first])
    store_signals(store, [{**first, "sentiment_label": "positive", "sentiment_score": 0.9, "enriched_at": T0 + timedelta(days=1)}])
    [row] = metric_by(store, "sentiment", "total")
    assert (row["n"], row["positive"], row["negative"]) == (1, 1, 0)


def test_change_versus_the_previous_period_of_the_same_length(store) -> None:
    start = datetime(2026, 11, 10, tzinfo=timezone.utc)
    current = [9, 10, 10, 3]  # NPS 50
    previous = [9, 3, 3, 3, 7]  # NPS -40
    older = [0, 0, 0]  # outside both periods
    rows = [signal(i, metric="nps", value=v, at=start + timedelta(days=1, minutes=i)) for i, v in enumerate(current)]
    rows += [signal(100 + i, metric="nps", value=v, at=start - timedelta(days=6, minutes=i)) for i, v in enumerate(previous)]
    rows += [signal(200 + i, metric="nps", value=v, at=start - timedelta(days=8)) for i, v in enumerate(older)]
    rows += [signal(300, metric="nps", value=10, touchpoints=("billing",), at=start + timedelta(days=2))]
    store_signals(store, rows)
    period = Filters(since=start, until=start + timedelta(days=7))
    got = as_map(metric_by(store, "nps", "touchpoint", period, min_n=3, compare=True), "touchpoint")
    delivery = got["delivery"]
    assert (delivery["nps"], delivery["n"]) == (nps(current), len(current))
    assert (delivery["previous"], delivery["previous_n"]) == (nps(previous), len(previous))
    assert delivery["change"] == pytest.approx(nps(current) - nps(previous))
    assert delivery["low_confidence"] is False
    billing = got["billing"]  # new this period: nothing to compare with
    assert (billing["previous"], billing["previous_n"], billing["change"], billing["low_confidence"]) == (None, 0, None, True)
    with pytest.raises(ValueError, match="needs a start"):
        metric_by(store, "nps", "touchpoint", Filters(), compare=True)


def test_low_confidence_is_flagged_not_hidden(store) -> None:
    store_signals(store, [signal(i, metric="csat", value=5, channel="chat" if i < 2 else "survey") for i in range(7)])
    rows = as_map(metric_by(store, "csat", "channel", min_n=5), "channel")
    assert (rows["chat"]["n"], rows["chat"]["low_confidence"]) == (2, True)
    assert (rows["survey"]["n"], rows["survey"]["low_confidence"]) == (5, False)


def test_filters_bind_brand_channel_and_time(store, mixed) -> None:
    since, until = T0 + timedelta(days=5), T0 + timedelta(days=12)
    chosen = [r for r in mixed if r["brand"] == "globex" and r["channel"] == "survey" and since <= r["occurred_at"] < until]
    [row] = metric_by(store, "volume", "total", Filters(since, until, "globex", "survey"))
    assert row["n"] == len(chosen)
    assert metric_by(store, "volume", "total", Filters(brand="acme' OR 1=1 --")) == []


def test_day_and_week_are_dates_in_time_order(store, mixed) -> None:
    days = [r["day"] for r in metric_by(store, "volume", "day")]
    assert days == sorted(days) and all(isinstance(d, date) for d in days)
    weeks = [r["week"] for r in metric_by(store, "volume", "week")]
    assert all(w.weekday() == 0 for w in weeks)


def test_a_grid_of_two_dimensions(store, mixed) -> None:
    rows = metric_rows(store, "sentiment", ("touchpoint", "week"))
    labels = defaultdict(list)
    for r in mixed:
        if r["sentiment_label"]:
            for tp in key_of(r, "touchpoint"):
                labels[(tp, key_of(r, "week")[0])].append(r["sentiment_label"])
    assert {(r["touchpoint"], r["week"]): r["n"] for r in rows} == {k: len(v) for k, v in labels.items()}


def test_top_negative_touchpoints_rank_by_net_sentiment_with_redacted_verbatims(store) -> None:
    rows = []
    plan = {"delivery": ["negative"] * 4 + ["positive"], "billing": ["negative"] * 2 + ["positive"] * 3, "checkout": ["negative"]}
    for tp, labels in plan.items():
        for label in labels:
            i = len(rows)
            rows.append(signal(i, label=label, touchpoints=(tp,), text_redacted=f"{tp} was bad, call me at [PHONE] ({i})"))
    rows.append(signal(99, label="negative", touchpoints=(), text_redacted="untagged complaint"))
    store_signals(store, rows)
    top = top_negative(store, min_n=3, limit=5, verbatims=2)
    assert [r["touchpoint"] for r in top] == ["delivery", "billing", "checkout"]  # checkout: n=1, low confidence, last
    assert close(top[0]["sentiment"], net_sentiment(plan["delivery"])) and top[0]["n"] == 5
    assert top[2]["low_confidence"] is True
    assert len(top[0]["verbatims"]) == 2 and len(top[2]["verbatims"]) == 1
    for row in top:
        for quote in row["verbatims"]:
            assert quote["text"].startswith(row["touchpoint"]) and "[PHONE]" in quote["text"]


def test_journey_is_every_signal_of_one_customer_in_time_order(store) -> None:
    rows = [
        signal(1, customer_id="c-1", channel="chat", at=T0 + timedelta(days=2)),
        signal(2, customer_id="c-1", channel="survey", metric="nps", value=3, at=T0),
        signal(3, customer_id="c-1", channel="email", kind="direct", at=T0 + timedelta(days=1)),
        signal(4, customer_id="c-2", channel="chat", at=T0),
    ]
    store_signals(store, rows)
    store_signals(store, rows[:1])  # redelivered
    steps = journey(store, "c-1")
    assert [s["signal_id"] for s in steps] == ["sig-2", "sig-3", "sig-1"]
    assert [s["channel"] for s in steps] == ["survey", "email", "chat"]
    assert "text_redacted" in steps[0] and "author" not in steps[0]
    assert journey(store, "c-1' OR '1'='1") == []
