"""Alerts on a real chdb store: steady weeks raise nothing; injected changes are caught, explained,
deduplicated while they last, and resolved when they end.

Texts are real: cli/samples/demo_signals.jsonl (VADER's Amazon snippets and
tweets, UCI Yelp sentences; see cli/samples/SOURCES.md). Enrichment fields
(touchpoints, sentiment) are set by the test so the injected change is known;
rows go through the sink's row mapping (tests/cx_rows.py).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from importlib import resources

from tests.cx_rows import signal, store_signals
from touchpoint.pipeline.alerts.ledger import open_alerts, recent_alerts
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.store import Store

SAMPLES = [json.loads(line) for line in resources.files("touchpoint.samples").joinpath("demo_signals.jsonl").read_text().splitlines()]
BATTERY = [s["text"] for s in SAMPLES if "battery" in s["text"].lower()]  # the injected complaint
OTHERS = [s["text"] for s in SAMPLES if "battery" not in s["text"].lower()]
T0 = datetime(2026, 9, 7, tzinfo=timezone.utc)  # a Monday; four weeks of history before WEEK5
WEEK5 = T0 + timedelta(weeks=4)
SPIKE = (WEEK5 + timedelta(hours=10), WEEK5 + timedelta(hours=14))  # 3x product_quality, Monday 10:00-14:00
NPS_DROP_FROM = WEEK5 + timedelta(days=1)  # billing's NPS 30 -> -20 from Tuesday on
HOURLY = (0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.3, 1.5, 1.6, 1.6, 1.5, 1.5, 1.4, 1.4, 1.4, 1.5, 1.6, 1.6, 1.4, 1.0, 0.6, 0.4)
TOUCHPOINTS = ("delivery", "product_quality", "billing")


def poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1)
    while total < mean:
        count, total = count + 1, total + rng.expovariate(1)
    return count


def signals(until: datetime, changes: bool, seed: int = 16) -> list[dict]:
    """About 1,500 signals a day, half surveys (NPS), over three touchpoints; with ``changes``, the injections."""
    rng, rows = random.Random(seed), []
    at = T0
    while at < until:
        rate = 45 * HOURLY[at.hour] * (0.8 if at.weekday() >= 5 else 1.0)
        for _ in range(poisson(rng, rate)):
            touchpoint = rng.choice(TOUCHPOINTS)
            survey = rng.random() < 0.5
            split = (0.5, 0.3, 0.2)
            if changes and survey and touchpoint == "billing" and at >= NPS_DROP_FROM:
                split = (0.25, 0.3, 0.45)
            group = rng.choices(("promoter", "passive", "detractor"), split)[0]
            label = {"promoter": "positive", "passive": "neutral", "detractor": "negative"}[group] if survey else rng.choice(("positive", "neutral", "negative"))
            rows.append(signal(
                len(rows), metric="nps" if survey else None,
                value={"promoter": 9, "passive": 7, "detractor": 3}[group] if survey else None,
                label=label, touchpoints=(touchpoint,), at=at + timedelta(seconds=rng.random() * 3600),
                channel="survey" if survey else "review", source="typeform" if survey else rng.choice(("amazon", "yelp")),
                text_redacted=rng.choice(OTHERS),
            ))  # fmt: skip
        if changes and SPIKE[0] <= at < SPIKE[1]:
            for _ in range(poisson(rng, 2 * rate / 3)):  # product_quality's share of the hour, twice more
                rows.append(signal(
                    len(rows), label="negative", touchpoints=("product_quality",), channel="review", source="amazon",
                    at=at + timedelta(seconds=rng.random() * 3600), text_redacted=rng.choice(BATTERY),
                ))  # fmt: skip
        at += timedelta(hours=1)
    return rows


def test_steady_weeks_raise_no_alert(store: Store, settings) -> None:
    store_signals(store, signals(WEEK5 + timedelta(days=7), changes=False))
    opened = []
    for hours in range(0, 7 * 24, 3):  # a week of evaluations, every 3 hours
        cycle = watch_once(store, settings, WEEK5 + timedelta(hours=hours, minutes=10))
        assert cycle.tests >= 20  # brand, two channels, three touchpoints, several metrics each
        opened += cycle.opened
    assert opened == [], [a.summary for a in opened]


def test_injected_changes_are_caught_explained_deduplicated_and_resolved(store: Store, settings) -> None:
    store_signals(store, signals(WEEK5 + timedelta(days=3), changes=True))

    before = watch_once(store, settings, SPIKE[0])
    assert before.opened == []  # nothing has happened yet
    during = watch_once(store, settings, SPIKE[0] + timedelta(hours=3, minutes=10))
    spikes = {(a.dimension, a.value): a for a in during.opened if a.metric == "volume_spike"}
    alert = spikes[("touchpoint", "product_quality")]
    assert alert.state == "open" and alert.n == alert.current and alert.n >= 30
    assert alert.current > alert.expected_high and alert.current_low > alert.expected
    assert alert.score > 3 and alert.p_value < alert.q and alert.baseline_windows == 4
    assert "n=" in alert.summary and "product_quality" in alert.summary
    why = alert.explanation
    assert "battery" in [t["term"] for t in why["terms"]][:3]
    assert len(why["verbatims"]) == 3 and all(v in BATTERY for v in why["verbatims"])
    assert why["contributions"]["channel"][0]["channel"] == "review"
    assert why["contributions"]["source"][0]["source"] == "amazon"
    assert len(why["window"]["baseline_windows"]) == 4

    again = watch_once(store, settings, SPIKE[0] + timedelta(hours=3, minutes=10))
    assert alert.alert_id not in {a.alert_id for a in again.opened}  # deduplicated while it lasts
    assert alert.alert_id in {a.alert_id for a in again.updated}
    restarted = Store.from_settings(settings)  # a watcher that restarts finds it open
    try:
        assert open_alerts(restarted)[alert.key].alert_id == alert.alert_id
    finally:
        restarted.close()

    after = watch_once(store, settings, SPIKE[1] + timedelta(hours=4))
    assert alert.alert_id in {a.alert_id for a in after.resolved}
    assert open_alerts(store).get(alert.key) is None

    nps = watch_once(store, settings, NPS_DROP_FROM + timedelta(hours=30))
    drops = {(a.dimension, a.value, a.metric): a for a in nps.opened}
    billing = drops[("touchpoint", "billing", "nps")]
    assert billing.current < billing.expected_low and billing.n >= 30 and billing.score < -3
    assert billing.explanation["contributions"]["channel"][0]["channel"] == "survey"
    assert not [a for a in nps.opened if a.value in ("delivery", "product_quality")], [a.summary for a in nps.opened]

    shown = recent_alerts(store)
    assert {a.alert_id for a in shown} >= {alert.alert_id, billing.alert_id}
    assert shown[0].state == "open"


def test_alert_ids_are_the_same_for_every_watcher(store: Store, settings) -> None:
    from touchpoint.pipeline.alerts.ledger import alert_id

    key = ("acme", "touchpoint", "billing", "nps")
    assert alert_id(key, T0) == alert_id(key, T0) != alert_id(key, T0 + timedelta(minutes=15))
