"""How well alerts work, measured: simulated weeks of real texts with injected changes.

    .venv/bin/python bench/alerts.py [--weeks 3] [--history 4] [--daily 9000] [--step MIN] [--seed 16]

Real texts (cli/samples/demo_signals.jsonl, plus VADER's tweets and Amazon
snippets and the UCI Yelp/Amazon sentences when `make data` has fetched them)
are enriched once by the packaged models (cached under .touchpoint/cache) and
replayed as one brand's signals: social posts, reviews and surveys (NPS and
CSAT, scores drawn consistently with the comment's sentiment), with a daily
and a weekly profile and day-to-day variation. Rows go into a real chdb store
through the project's Store (the sink's row mapping); every evaluation step is
one `watch_once` (the code `touchpoint watch` runs), with its alert ledger.

Injected, after ``--history`` weeks of history:
  (a) a 3x volume spike in one touchpoint (8 hours),
  (b) a 20-point NPS drop in one touchpoint (3 days),
  (c) a shift to negative sentiment in one channel (3 days).
With ``--control`` nothing is injected: every alert is a false alarm.
Printed: each change's detection delay (hours and evaluation windows), every
other alert, classed as a consequence (a series the injected signals really
changed, during the change) or a false alarm (anything else), and false alarms
per simulated week. Goal: every change caught within two windows, at most one
false alarm per week across all series.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts.ledger import Alert
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import Store

BRAND = "acme"
START = datetime(2026, 6, 1, tzinfo=timezone.utc)  # a Monday
HOUR_WEIGHTS = (0.2, 0.12, 0.08, 0.07, 0.08, 0.15, 0.35, 0.6, 0.85, 1.0, 1.05, 1.1,
                1.15, 1.1, 1.0, 0.95, 0.95, 1.0, 1.1, 1.2, 1.2, 1.0, 0.7, 0.4)  # fmt: skip
WEEKDAY = {  # Monday .. Sunday
    "survey": (1.1, 1.05, 1.0, 1.0, 0.95, 0.7, 0.6),
    "review": (0.95, 0.95, 0.95, 1.0, 1.0, 1.05, 1.1),
    "social": (0.9, 0.9, 0.9, 0.95, 1.0, 1.2, 1.25),
}
CHANNEL_SHARE = {"social": 1 / 3, "review": 2 / 9, "survey": 4 / 9}
DAY_CV = 0.08  # day-to-day variation of each channel's volume
SURVEY_TOUCHPOINTS = {"delivery": 0.3, "checkout": 0.2, "contact_center": 0.2, "returns_refunds": 0.15, "mobile_app": 0.15}
NPS_SPLIT = {  # promoters, passives, detractors
    "delivery": (0.45, 0.30, 0.25), "checkout": (0.55, 0.30, 0.15), "contact_center": (0.40, 0.30, 0.30),
    "returns_refunds": (0.35, 0.30, 0.35), "mobile_app": (0.50, 0.30, 0.20),
}  # fmt: skip
CSAT_SATISFIED = {"delivery": 0.75, "checkout": 0.8, "contact_center": 0.7, "returns_refunds": 0.65, "mobile_app": 0.78}
MOOD_OF = {  # the comment's sentiment given the score: positive, neutral, negative
    "promoter": (0.75, 0.15, 0.10), "passive": (0.35, 0.35, 0.30), "detractor": (0.08, 0.17, 0.75),
}  # fmt: skip
MOODS = ("positive", "neutral", "negative")


@dataclass
class Text:
    channel: str
    source: str
    text: str
    hint: str | None
    enriched: dict[str, Any]


@dataclass
class Injection:
    name: str
    key: tuple[str, str, str, str]  # the series and metric that must alarm
    family: str
    start: datetime
    end: datetime
    touched: set[tuple[str, str]] = field(default_factory=set)  # (dimension, value) of series it changed
    detected: Alert | None = None


# --- texts -------------------------------------------------------------------------------------------

def pool_texts(data_dir: Path, per_set: int) -> tuple[list[tuple[str, str, str]], list[str], str]:
    """(channel, source, text) for social and review, survey comments, and where they come from."""
    demo = [json.loads(line) for line in resources.files("touchpoint.samples").joinpath("demo_signals.jsonl").read_text().splitlines()]
    public = [(r["channel"], r["source"], r["text"]) for r in demo if r["channel"] != "survey"]
    comments = [r["text"] for r in demo if r["channel"] == "survey"]
    origin = f"{len(demo)} texts of cli/samples/demo_signals.jsonl"
    try:
        from touchpoint.models.datasets import load, sample

        more = {
            ("social", "x"): sample(load("vader_tweets", data_dir), per_set),
            ("review", "amazon"): sample(load("uci_amazon", data_dir), per_set // 2),
            ("review", "yelp"): sample(load("uci_yelp", data_dir), per_set // 2),
        }
        seen = {t for _, _, t in public} | set(comments)
        for (channel, source), rows in more.items():
            public += [(channel, source, r.text) for r in rows if r.text not in seen]
        comments += [r.text for r in sample(load("vader_amazon", data_dir), per_set) if r.text not in seen]
        origin += f" + {sum(len(v) for v in more.values()) + per_set} of the packaged labelled sets (make data)"
    except FileNotFoundError:
        origin += " (run `make data` for the larger packaged sets)"
    return public, list(dict.fromkeys(comments)), origin


def enrich_pool(settings: Settings, public: list[tuple[str, str, str]], comments: list[str]) -> list[Text]:
    """Every text through the packaged models once (survey comments once per survey touchpoint); cached."""
    from touchpoint.models.enricher import Enricher
    from touchpoint.pipeline.enrichment import enricher_config

    jobs = [(c, s, t, None) for c, s, t in public] + [("survey", "survey_export", t, h) for t in comments for h in SURVEY_TOUCHPOINTS]
    digest = hashlib.sha256(json.dumps([j[2:] for j in jobs]).encode()).hexdigest()[:16]
    cache = settings.data_dir / "cache" / f"alerts-pool-{digest}.json"
    if cache.is_file():
        return [Text(*row) for row in json.loads(cache.read_text())]
    print(f"enriching {len(jobs)} texts once with the packaged models (cached in {cache}) ...", file=sys.stderr)
    enricher = Enricher(enricher_config(settings))
    texts = []
    for i in range(0, len(jobs), 64):
        batch = jobs[i : i + 64]
        for (channel, source, text, hint), result in zip(batch, enricher.enrich([j[2] for j in batch], [j[3] for j in batch])):
            texts.append(Text(channel, source, text, hint, {**asdict(result), "model_version": enricher.version}))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([[t.channel, t.source, t.text, t.hint, t.enriched] for t in texts]))
    return texts


# --- signals -----------------------------------------------------------------------------------------

class Simulation:
    """One brand's signals, hour by hour, with the injected changes."""

    def __init__(self, texts: list[Text], daily: int, seed: int, spike_touchpoint: str, drop_touchpoint: str,
                 shift_channel: str, shift_points: float) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.daily = daily
        self.by_channel: dict[str, list[Text]] = defaultdict(list)
        self.by_mood: dict[tuple[str, str | None, str], list[Text]] = defaultdict(list)
        for t in texts:
            self.by_channel[t.channel].append(t)
            self.by_mood[(t.channel, t.hint, t.enriched["sentiment_label"])].append(t)
        self.spike_texts = [t for t in texts if t.hint is None and spike_touchpoint in t.enriched["touchpoints"]]
        if len(self.spike_texts) < 5:
            raise SystemExit(f"only {len(self.spike_texts)} texts are tagged {spike_touchpoint!r}: pick another --spike")
        self.spike_touchpoint, self.drop_touchpoint, self.shift_channel = spike_touchpoint, drop_touchpoint, shift_channel
        reviews = self.by_channel[shift_channel]
        net = sum((t.enriched["sentiment_label"] == "positive") - (t.enriched["sentiment_label"] == "negative") for t in reviews) / len(reviews)
        self.shift_probability = shift_points / 100 / (1 + net)  # replacing a text by a negative one moves net by -(1 + net)
        self.count = 0
        self.day_noise: dict[tuple[int, str], float] = {}

    def expected(self, channel: str, at: datetime) -> float:
        """Signals per hour of one channel at ``at`` (before day-to-day variation)."""
        day = self.daily * CHANNEL_SHARE[channel] * WEEKDAY[channel][at.weekday()] / (sum(WEEKDAY[channel]) / 7)
        return day * HOUR_WEIGHTS[at.hour] / sum(HOUR_WEIGHTS)

    def spike_rate(self, at: datetime) -> float:
        """The spiking touchpoint's expected signals per hour, over every channel."""
        rate = 0.0
        for channel, texts in self.by_channel.items():
            share = sum(self.spike_touchpoint in t.enriched["touchpoints"] for t in texts) / len(texts)
            rate += self.expected(channel, at) * share
        return rate

    def record(self, text: Text, at: datetime, score: dict[str, Any] | None) -> dict[str, Any]:
        self.count += 1
        e = text.enriched
        return {
            "signal_id": f"sim-{self.count}", "source_id": str(self.count), "channel": text.channel, "source": text.source,
            "kind": "direct" if text.channel == "survey" else "indirect", "brand": BRAND, "customer_id": None,
            "author": None, "occurred_at": at, "ingested_at": at + timedelta(seconds=30),
            "enriched_at": at + timedelta(seconds=31), "text_redacted": e["text_redacted"], "pii_found": e["pii_found"],
            "language": e["language"], "score": score, "touchpoint_hint": text.hint, "touchpoints": e["touchpoints"],
            "journey_stage": e["journey_stage"], "sentiment_label": e["sentiment_label"],
            "sentiment_score": e["sentiment_score"], "emotions": e["emotions"], "url": None, "attributes": {},
            "model_version": e["model_version"],
        }  # fmt: skip

    def pick(self, channel: str, hint: str | None, mood: str | None) -> Text:
        options = self.by_mood.get((channel, hint, mood)) if mood else None
        if not options:
            options = [t for t in self.by_channel[channel] if t.hint == hint]
        return self.rng.choice(options)

    def survey(self, at: datetime, nps_drop: bool) -> tuple[Text, dict[str, Any]]:
        rng = self.rng
        touchpoint = rng.choices(list(SURVEY_TOUCHPOINTS), weights=list(SURVEY_TOUCHPOINTS.values()))[0]
        if rng.random() < 0.65:
            split = list(NPS_SPLIT[touchpoint])
            if nps_drop and touchpoint == self.drop_touchpoint:
                split = [split[0] - 0.10, split[1], split[2] + 0.10]  # 20 points lower
            group = rng.choices(("promoter", "passive", "detractor"), weights=split)[0]
            value = {"promoter": rng.choice((9, 10)), "passive": rng.choice((7, 8)), "detractor": rng.randint(0, 6)}[group]
            score = {"metric": "nps", "value": float(value), "scale_min": 0, "scale_max": 10}
        else:
            satisfied = rng.random() < CSAT_SATISFIED[touchpoint]
            group = "promoter" if satisfied else "detractor"
            value = rng.choice((4, 5)) if satisfied else rng.randint(1, 3)
            score = {"metric": "csat", "value": float(value), "scale_min": 1, "scale_max": 5}
        mood = rng.choices(MOODS, weights=MOOD_OF[group])[0]
        return self.pick("survey", touchpoint, mood), score

    def hour(self, at: datetime, injections: dict[str, Injection]) -> list[dict[str, Any]]:
        """Every signal of one hour."""
        rng = self.rng
        active = {name: name in injections and injections[name].start <= at < injections[name].end
                  for name in ("volume_spike", "nps_drop", "sentiment_shift")}  # fmt: skip
        rows = []
        for channel in CHANNEL_SHARE:
            noise_key = ((at - START).days, channel)
            if noise_key not in self.day_noise:
                self.day_noise[noise_key] = rng.gammavariate(1 / DAY_CV**2, DAY_CV**2)
            for _ in range(poisson(rng, self.expected(channel, at) * self.day_noise[noise_key])):
                when = at + timedelta(seconds=rng.random() * 3600)
                if channel == "survey":
                    text, score = self.survey(when, active["nps_drop"])
                    if active["nps_drop"] and text.hint == self.drop_touchpoint and score["metric"] == "nps":
                        touch(injections["nps_drop"], text)
                    rows.append(self.record(text, when, score))
                    continue
                if active["sentiment_shift"] and channel == self.shift_channel and rng.random() < self.shift_probability:
                    text = self.pick(channel, None, "negative")
                    touch(injections["sentiment_shift"], text)
                else:
                    text = self.pick(channel, None, None)
                rows.append(self.record(text, when, None))
        if active["volume_spike"]:
            for _ in range(poisson(rng, 2 * self.spike_rate(at))):
                text = rng.choice(self.spike_texts)
                touch(injections["volume_spike"], text)
                rows.append(self.record(text, at + timedelta(seconds=rng.random() * 3600), None))
        return rows


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 500; exact below)."""
    if mean > 500:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def touch(injection: Injection, text: Text) -> None:
    """Remember which series the injected signal is part of: they really changed."""
    injection.touched |= {("brand", "all"), ("channel", text.channel)}
    injection.touched |= {("touchpoint", t) for t in text.enriched["touchpoints"]}


# --- run ---------------------------------------------------------------------------------------------

def injections_for(args: argparse.Namespace, settings: Settings) -> dict[str, Injection]:
    first = START + timedelta(weeks=args.history)
    return {
        "volume_spike": Injection("(a) 3x volume spike", (BRAND, "touchpoint", args.spike, "volume_spike"), "volume",
                                  first + timedelta(days=1, hours=10), first + timedelta(days=1, hours=18)),
        "nps_drop": Injection("(b) 20-point NPS drop", (BRAND, "touchpoint", args.drop, "nps"), "rates",
                              first + timedelta(days=9, hours=6), first + timedelta(days=12, hours=6)),
        "sentiment_shift": Injection(f"(c) -{args.shift:g} points net sentiment", (BRAND, "channel", args.channel, "sentiment"),
                                     "rates", first + timedelta(days=16, hours=6), first + timedelta(days=19, hours=6)),
    }  # fmt: skip


def classify(alert: Alert, injections: dict[str, Injection], settings: Settings) -> str:
    """detected (the injected change itself), consequence (a series it changed, while it lasted) or false alarm."""
    for inj in injections.values():
        window = timedelta(hours=settings.alert_window_h if alert.metric not in ("volume_spike", "volume_drop") else settings.alert_volume_window_h)
        during = inj.start < alert.opened_at <= inj.end + window
        if during and alert.key == inj.key:
            return "detected"
        if during and (alert.dimension, alert.value) in inj.touched:
            return "consequence"
    return "false alarm"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=3, help="evaluated weeks (after the history)")
    parser.add_argument("--history", type=int, default=4, help="weeks of history before the first evaluation")
    parser.add_argument("--daily", type=int, default=9000, help="the brand's signals per day (all channels)")
    parser.add_argument("--step", type=float, help="minutes between evaluations (default: the alert_step_min setting)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--spike", default="pricing", help="touchpoint of the volume spike")
    parser.add_argument("--drop", default="delivery", help="survey touchpoint of the NPS drop")
    parser.add_argument("--channel", default="review", help="channel of the sentiment shift")
    parser.add_argument("--shift", type=float, default=15.0, help="points of net sentiment the shift takes away")
    parser.add_argument("--control", action="store_true", help="inject nothing: false alarms on every series")
    args = parser.parse_args()

    base = Settings.load()
    settings = base.with_overrides(alert_step_min=args.step) if args.step else base
    public, comments, origin = pool_texts(base.data_dir / "data", 400)
    texts = enrich_pool(base, public, comments)
    sim = Simulation(texts, args.daily, args.seed, args.spike, args.drop, args.channel, args.shift)
    injections = {} if args.control else injections_for(args, settings)
    end = START + timedelta(weeks=args.history + args.weeks)

    with tempfile.TemporaryDirectory(prefix="touchpoint-alerts-") as folder:
        settings = settings.with_overrides(clickhouse_url=f"chdb://{folder}", clickhouse_database="alerts_bench")
        store = Store.from_settings(settings)
        store.migrate()
        started, rows = time.perf_counter(), []
        at = START
        while at < end:
            rows += [signal_row(r) for r in sim.hour(at, injections)]
            if len(rows) >= 50_000:
                store.insert_signals(rows)
                rows = []
            at += timedelta(hours=1)
        store.insert_signals(rows)
        loaded = time.perf_counter() - started

        step = timedelta(minutes=settings.alert_step_min)
        at = START + timedelta(weeks=args.history) + timedelta(minutes=settings.alert_settle_min)
        opened: list[Alert] = []
        resolved: dict[str, Alert] = {}
        evaluations, tests, q, started = 0, 0, 0.0, time.perf_counter()
        while at <= end:
            cycle = watch_once(store, settings, at)
            evaluations, tests, q = evaluations + 1, tests + cycle.tests, cycle.evaluation.q
            opened += cycle.opened
            resolved.update({a.alert_id: a for a in cycle.resolved})
            at += step
        watched = time.perf_counter() - started
        store.close()

    report(args, settings, sim, injections, opened, resolved, origin, len(texts), evaluations, tests, q, loaded, watched)
    return 0


def report(args, settings, sim, injections, opened, resolved, origin, pool, evaluations, tests, q, loaded, watched) -> None:  # type: ignore[no-untyped-def]
    weeks = args.weeks
    print(f"Alert simulation: brand {BRAND}, {args.daily:,} signals/day "
          f"({', '.join(f'{c} {round(args.daily * s):,}' for c, s in CHANNEL_SHARE.items())}), "
          f"{args.history} weeks of history + {weeks} evaluated weeks: {sim.count:,} signals in chdb (loaded in {loaded:.0f} s)")
    print(f"  texts: {pool:,} enrichments of real texts ({origin}), replayed with daily/weekly profiles, day-to-day CV {DAY_CV:.0%}")
    print(f"  detector: windows volume {settings.alert_volume_window_h:g}h / rates {settings.alert_window_h:g}h, "
          f"{settings.alert_baseline} baseline x{settings.alert_baseline_windows}, min n {settings.alert_min_n}, "
          f"step {settings.alert_step_min:g} min, budget {settings.alert_false_alarms_per_week:g} false alarms/week "
          f"-> BH q = {q:.2e} per evaluation")
    print(f"  {evaluations:,} evaluations, {tests / max(1, evaluations):.0f} tests each on average, "
          f"{watched:.0f} s ({1000 * watched / max(1, evaluations):.0f} ms per evaluation)")
    print()
    classes = Counter()
    print("Injected changes:" if injections else "Injected changes: none (--control)")
    met = True
    for inj in injections.values():
        hits = sorted((a for a in opened if classify(a, injections, settings) == "detected" and a.key == inj.key), key=lambda a: a.opened_at)
        window_h = settings.alert_volume_window_h if inj.family == "volume" else settings.alert_window_h
        what = f"{inj.name} at {inj.key[1]} {inj.key[2]}, {inj.start:%a %d %b %H:%M} - {inj.end:%a %d %b %H:%M}"
        if not hits:
            print(f"  {what}: NOT DETECTED")
            met = False
            continue
        alert = hits[0]
        delay = (alert.opened_at - inj.start) / timedelta(hours=1)
        windows = delay / window_h
        met &= windows <= 2
        print(f"  {what}: detected after {delay:.2f} h = {windows:.2f} windows of {window_h:g}h")
        print(f"      {alert.summary}")
        terms = ", ".join(f"{t['term']} (z={t['z']:.1f})" for t in alert.explanation.get("terms", [])[:6])
        print(f"      why: {terms or '(no term stands out)'}")
        for quote in alert.explanation.get("verbatims", [])[:1]:
            print(f"      verbatim: \"{quote[:140]}\"")
        contributors = alert.explanation.get("contributions", {})
        print("      channels: " + ", ".join(f"{c['channel']} {c['change']:+.1f}" for c in contributors.get("channel", [])[:3])
              + "; sources: " + ", ".join(f"{c['source']} {c['change']:+.1f}" for c in contributors.get("source", [])[:3]))
        closed = resolved.get(alert.alert_id)
        print(f"      resolved at {closed.resolved_at:%a %d %b %H:%M}" if closed else "      still open at the end")
    print()
    false_alarms = []
    for alert in opened:
        kind = classify(alert, injections, settings)
        classes[kind] += 1
        if kind == "false alarm":
            false_alarms.append(alert)
    print(f"Other alerts: {classes['consequence']} consequences (series the injected signals changed, while they lasted)")
    for alert in opened:
        if classify(alert, injections, settings) == "consequence":
            print(f"  ~ {alert.opened_at:%a %d %b %H:%M} {alert.dimension} {alert.value} {alert.metric}: "
                  f"{alert.current:.1f} vs {alert.expected:.1f} expected, n={alert.n}, z={alert.score:+.1f}")
    rate = len(false_alarms) / weeks
    met &= rate <= 1
    print(f"False alarms on unchanged series: {len(false_alarms)} in {weeks} simulated weeks = {rate:.2f} per week (goal <= 1)")
    for alert in false_alarms:
        print(f"  ! {alert.opened_at:%a %d %b %H:%M} {alert.dimension} {alert.value} {alert.metric}: "
              f"{alert.current:.1f} vs {alert.expected:.1f} expected [{alert.expected_low:.1f}, {alert.expected_high:.1f}], "
              f"n={alert.n}, z={alert.score:+.1f}, p={alert.p_value:.1e}")
    print()
    print("Goal (each change within two windows, <= 1 false alarm per week):", "MET" if met else "MISSED")


if __name__ == "__main__":
    sys.exit(main())
