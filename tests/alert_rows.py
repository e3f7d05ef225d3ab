"""Signals for alert tests: five weeks of one brand, with an injected volume spike and NPS drop.

Texts are real: cli/samples/demo_signals.jsonl (VADER's Amazon snippets and
tweets, UCI Yelp sentences; see cli/samples/SOURCES.md). Enrichment fields
(touchpoints, sentiment) are set here so the injected changes are known; rows
go through the sink's row mapping (tests/cx_rows.py).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from importlib import resources

from tests.cx_rows import signal

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
