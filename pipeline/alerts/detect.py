"""One evaluation: test every series and metric, then control false alarms across all of them.

Windows end on a grid (``alert_step_min``, after leaving out the newest
``alert_settle_min``), so repeated runs between two grid points give the same
answer and every watcher agrees. A test runs only with enough data: at least
``alert_min_baseline_windows`` baseline windows after the brand's first
signal, and ``alert_min_n`` responses in the window and in the baseline (for
volume: that many signals in a spiking window, or expected in a dropping one).

False alarms: Benjamini-Hochberg over every test of one evaluation at
q = budget x step / week. Under no change, each evaluation raises a false
alarm with probability at most q, so a week of evaluations raises at most
``alert_false_alarms_per_week`` on average (a union bound over evaluations;
overlapping windows repeat the same alarm, which the ledger counts once, so
the measured rate is lower: bench/alerts.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Sequence

from touchpoint.core.settings import Settings
from touchpoint.pipeline.alerts.series import (
    WEEK,
    AlertMetric,
    Counts,
    SeriesKey,
    Windows,
    alert_metrics,
    first_signals,
    read_counts,
)  # fmt: skip
from touchpoint.pipeline.alerts.stats import Outcome, benjamini_hochberg, count_test, net_test, share_test
from touchpoint.pipeline.store import Store

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Finding:
    """One tested series and metric: its windows, the baseline windows used, the outcome."""

    series: SeriesKey
    metric: AlertMetric
    windows: Windows
    baseline_slots: tuple[int, ...]
    outcome: Outcome
    flagged: bool = False  # significant after the false-alarm control

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (*self.series, self.metric.key)


@dataclass(frozen=True)
class Evaluation:
    end: datetime  # the windows' end
    q: float  # the false-discovery level this evaluation used
    findings: list[Finding]

    @property
    def flagged(self) -> list[Finding]:
        return [f for f in self.findings if f.flagged]


def window_end(at: datetime, settings: Settings) -> datetime:
    """The latest grid point at least ``alert_settle_min`` before ``at``."""
    step = timedelta(minutes=settings.alert_step_min)
    settled = at - timedelta(minutes=settings.alert_settle_min)
    return EPOCH + ((settled - EPOCH) // step) * step


def evaluation_q(settings: Settings) -> float:
    """The per-evaluation level that spends the weekly false-alarm budget over a week of evaluations."""
    return min(0.5, settings.alert_false_alarms_per_week * timedelta(minutes=settings.alert_step_min) / WEEK)


def run_test(metric: AlertMetric, counts: Counts, slots: Sequence[int], settings: Settings) -> Outcome | None:
    """The metric's test on the current window (slot 0) against ``slots``; None without enough data."""
    n = counts[metric.n]
    baseline_n = [n[s] for s in slots]
    if metric.kind == "count":
        outcome = count_test(n[0], baseline_n, metric.direction, settings.alert_volume_min_cv)
        enough = n[0] if metric.direction == "up" else outcome.expected
        return outcome if enough >= settings.alert_min_n else None
    if n[0] < settings.alert_min_n or sum(baseline_n) < settings.alert_min_n:
        return None
    hits = counts[metric.hits]
    if metric.kind == "share":
        return share_test(hits[0], n[0], [hits[s] for s in slots], baseline_n, metric.direction, settings.alert_rate_min_sd)
    misses = counts[metric.misses]
    return net_test(
        hits[0], misses[0], n[0], [hits[s] for s in slots], [misses[s] for s in slots], baseline_n,
        metric.direction, settings.alert_rate_min_sd,
    )  # fmt: skip


def family_windows(end: datetime, settings: Settings) -> dict[str, Windows]:
    length = {"volume": settings.alert_volume_window_h, "rates": settings.alert_window_h}
    return {
        family: Windows(end, timedelta(hours=hours), settings.alert_baseline, settings.alert_baseline_windows)
        for family, hours in length.items()
    }


def usable_slots(windows: Windows, first: datetime | None) -> tuple[int, ...]:
    """Baseline slots that start after the brand's first signal (earlier ones were never observed)."""
    if first is None:
        return ()
    first = first if first.tzinfo else first.replace(tzinfo=timezone.utc)
    return tuple(s for s in windows.slots() if s > 0 and windows.bounds(s)[0] >= first)


def evaluate(store: Store, settings: Settings, at: datetime) -> Evaluation:
    """Every series x metric tested on the windows ending at the grid point before ``at``."""
    end = window_end(at, settings)
    metrics = alert_metrics(settings.alert_emotions)
    first = first_signals(store)
    findings: list[Finding] = []
    for family, windows in family_windows(end, settings).items():
        tested = [m for m in metrics if m.family == family]
        for series, counts in sorted(read_counts(store, windows, settings.alert_emotions).items()):
            slots = usable_slots(windows, first.get(series[0]))
            if len(slots) < settings.alert_min_baseline_windows:
                continue
            for metric in tested:
                outcome = run_test(metric, counts, slots, settings)
                if outcome is not None:
                    findings.append(Finding(series, metric, windows, slots, outcome))
    q = evaluation_q(settings)
    flags = benjamini_hochberg([f.outcome.p_value for f in findings], q)
    return Evaluation(end, q, [replace(f, flagged=flag) for f, flag in zip(findings, flags)])
