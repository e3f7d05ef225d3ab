"""What is watched: series (brand, brand x channel, brand x touchpoint), metrics, and their windows.

One query per window length reads ``signals FINAL`` once and returns, for
every series, the counts each test needs, in the current window (slot 0) and
in each baseline window (slots 1..K). Baseline windows respect the weekly
rhythm: "weekly" takes the same hours of the week in the K weeks before;
"trailing" takes the K windows just before the current one. Metric
definitions (who is a promoter, what counts as a text) come from
pipeline/metrics_sql.py, the one home of those rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Sequence

from touchpoint.pipeline.metrics_sql import (
    CSAT,
    CSAT_SATISFIED,
    DETRACTOR,
    NEGATIVE,
    NPS,
    POSITIVE,
    PROMOTER,
    TEXT,
)  # fmt: skip
from touchpoint.pipeline.queries import FINAL_SETTINGS, STAMP, UNACTIONABLE
from touchpoint.pipeline.store import Store

WEEK = timedelta(days=7)
Kind = Literal["count", "share", "net"]
Family = Literal["volume", "rates"]
_NAME = re.compile(r"^[a-z_]+$")


@dataclass(frozen=True)
class AlertMetric:
    """One watched metric in one direction, and the counts its test reads."""

    name: str  # volume, sentiment, nps, csat, or an emotion's name
    direction: Literal["up", "down"]  # the bad direction
    kind: Kind
    family: Family  # which window it is tested on
    n: str  # the count it rests on
    hits: str = ""  # share: the numerator; net: the good end
    misses: str = ""  # net: the bad end
    population: str = "1"  # SQL: the signals it is computed over (their texts explain it)
    bad: str = "1"  # SQL: the signals that make it worse (their texts are the verbatims)
    label: str = ""

    @property
    def key(self) -> str:
        return self.name if self.kind != "count" else f"{self.name}_{'spike' if self.direction == 'up' else 'drop'}"

    def value(self, counts: Counts, slots: Sequence[int]) -> tuple[float | None, int]:
        """The metric over ``slots`` (a count: per window) and the n it rests on."""
        n = sum(counts[self.n][s] for s in slots)
        if self.kind == "count":
            return n / len(slots), n
        if n == 0:
            return None, 0
        good = sum(counts[self.hits][s] for s in slots)
        bad = sum(counts[self.misses][s] for s in slots) if self.kind == "net" else 0
        return 100 * (good - bad) / n, n


def alert_metrics(emotions: Sequence[str]) -> tuple[AlertMetric, ...]:
    """Every watched metric; ``emotions`` are the ones whose rising share alerts (settings.alert_emotions)."""
    for emotion in emotions:
        if not _NAME.match(emotion):
            raise ValueError(f"alert emotion {emotion!r} is not an emotion name (lower-case letters, e.g. anger)")
    return (
        AlertMetric("volume", "up", "count", "volume", "n", label="volume spike (signals)"),
        AlertMetric("volume", "down", "count", "volume", "n", label="volume drop (signals)"),
        AlertMetric("sentiment", "down", "net", "rates", "text_n", "positive", "negative", TEXT, NEGATIVE,
                    "net sentiment drop (% positive - % negative)"),
        AlertMetric("nps", "down", "net", "rates", "nps_n", "promoters", "detractors", NPS, DETRACTOR,
                    "NPS drop (% promoters - % detractors)"),
        AlertMetric("csat", "down", "share", "rates", "csat_n", "csat_satisfied", "", CSAT, f"{CSAT} AND NOT ({CSAT_SATISFIED})",
                    "CSAT drop (% scoring 4-5)"),
        *(
            AlertMetric(e, "up", "share", "rates", "text_n", f"emotion_{e}", "", TEXT, f"has(emotions, '{e}')",
                        f"rising share of {e} (% of texts)")
            for e in emotions
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class Windows:
    """The current window [end - length, end) and K baseline windows, ``period`` apart."""

    end: datetime
    length: timedelta
    baseline: Literal["weekly", "trailing"]
    count: int  # K

    @property
    def period(self) -> timedelta:
        return WEEK if self.baseline == "weekly" else self.length

    def bounds(self, slot: int) -> tuple[datetime, datetime]:
        """Slot 0 is the current window, 1..K the baseline windows."""
        end = self.end - slot * self.period
        return end - self.length, end

    def slots(self) -> range:
        return range(self.count + 1)


Counts = dict[str, list[int]]  # a series' counts by name, one per slot (index = slot)
SeriesKey = tuple[str, str, str]  # (brand, dimension, value): dimension is brand | channel | touchpoint


def _aggregates(emotions: Sequence[str]) -> list[tuple[str, str]]:
    return [
        ("n", "count()"),
        ("text_n", f"countIf({TEXT})"),
        ("positive", f"countIf({POSITIVE})"),
        ("negative", f"countIf({NEGATIVE})"),
        ("nps_n", f"countIf({NPS})"),
        ("promoters", f"countIf({PROMOTER})"),
        ("detractors", f"countIf({DETRACTOR})"),
        ("csat_n", f"countIf({CSAT})"),
        ("csat_satisfied", f"countIf({CSAT_SATISFIED})"),
        *((f"emotion_{e}", f"countIf({TEXT} AND has(emotions, {{emotion_{i}:String}}))") for i, e in enumerate(emotions)),
    ]


def slot_sql(windows: Windows) -> tuple[str, str, dict[str, Any]]:
    """(slot expression, WHERE on the windows, parameters): ranges the primary key can use."""
    cases, ranges, params = [], [], {}
    for slot in windows.slots():
        start, end = windows.bounds(slot)
        params[f"s{slot}"], params[f"e{slot}"] = start, end
        condition = f"(occurred_at >= {{s{slot}:{STAMP}}} AND occurred_at < {{e{slot}:{STAMP}}})"
        cases.append(f"{condition}, {slot}")
        ranges.append(condition)
    return f"multiIf({', '.join(cases)}, -1)", "(" + " OR ".join(ranges) + ")", params


# Every signal counts for its brand, its channel, and each touchpoint it is tagged with
# (as metric_sql's touchpoint dimension); "other"/"untagged" belong to no team and are not watched.
SERIES_JOIN = (
    "ARRAY JOIN arrayConcat([('brand', 'all'), ('channel', toString(channel))], "
    "arrayMap(t -> ('touchpoint', t), arrayFilter(t -> NOT has({unactionable:Array(String)}, t), "
    "CAST(touchpoints, 'Array(String)')))) AS series"
)


def counts_sql(windows: Windows, emotions: Sequence[str], keys: str = SERIES_JOIN, where: str = "1") -> tuple[str, dict[str, Any]]:
    """Counts per (brand, dimension, value, slot); ``keys`` is an ARRAY JOIN naming ``series``."""
    slot, in_windows, params = slot_sql(windows)
    params.update({f"emotion_{i}": e for i, e in enumerate(emotions)}, unactionable=list(UNACTIONABLE))
    columns = ", ".join(f"{expr} AS {name}" for name, expr in _aggregates(emotions))
    sql = (
        f"SELECT brand, series.1 AS dimension, series.2 AS value, {slot} AS slot, {columns} "
        f"FROM {{db}}.signals FINAL {keys} WHERE {in_windows} AND {where} "
        "GROUP BY brand, dimension, value, slot"
    )
    return sql, params


def read_counts(
    store: Store, windows: Windows, emotions: Sequence[str], keys: str = SERIES_JOIN, where: str = "1",
    params: dict[str, Any] | None = None,
) -> dict[SeriesKey, Counts]:  # fmt: skip
    """Counts of every series seen in any slot; a slot without signals counts zero."""
    sql, bound = counts_sql(windows, emotions, keys, where)
    rows = store.query(sql + FINAL_SETTINGS, {**bound, **(params or {})})
    names = [name for name, _ in _aggregates(emotions)]
    found: dict[SeriesKey, Counts] = {}
    for row in rows:
        key = (row["brand"], row["dimension"], row["value"])
        counts = found.setdefault(key, {name: [0] * (windows.count + 1) for name in names})
        for name in names:
            counts[name][row["slot"]] = int(row[name])
    return found


def first_signals(store: Store) -> dict[str, datetime]:
    """Each brand's first signal: baseline windows before it hold no data, not zero signals."""
    rows = store.query("SELECT brand, min(occurred_at) AS first FROM {db}.signals GROUP BY brand")
    return {row["brand"]: row["first"] for row in rows}
