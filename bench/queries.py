"""Latency of the standard analyst queries at 1,000,000 enriched signals in chdb.

    .venv/bin/python bench/queries.py [N]

Loads N synthetic-but-realistic enriched signals (six channels, 15 touchpoints,
three brands, survey scores consistent with sentiment, 180 days ending now)
with ``INSERT ... SELECT FROM numbers()`` in 10 batches, then re-delivers 2% of
them (so FINAL has real duplicates to collapse), and prints the median latency
of each standard query twice: as loaded (about 11 unmerged parts per monthly
partition, the worst case for FINAL) and after ``OPTIMIZE ... FINAL`` (what
background merges converge to), each with its ratio to a baseline measured in
the same run: ``SELECT count() FROM signals FINAL``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from touchpoint.pipeline.queries import FINAL_SETTINGS, Filters, journey, metric_by, metric_rows, top_negative
from touchpoint.pipeline.store import SIGNAL_COLUMNS, Store

TOUCHPOINTS = (
    "advertising", "website", "product_info", "pricing", "checkout", "payment", "delivery", "onboarding",
    "product_quality", "mobile_app", "store_staff", "contact_center", "returns_refunds", "billing", "loyalty",
)  # fmt: skip
STAGES = (
    "awareness", "consideration", "consideration", "consideration", "purchase", "purchase", "delivery_onboarding",
    "delivery_onboarding", "usage", "usage", "usage", "support", "support", "billing_renewal", "advocacy",
)  # fmt: skip
MOOD = (0.0, 0.1, 0.05, -0.25, -0.05, -0.3, -0.35, 0.1, 0.2, -0.2, 0.3, -0.15, -0.3, -0.4, 0.35)
TEXTS = (
    "The courier left my parcel in the rain and nobody answered my calls",
    "Checkout kept failing with my card, tried three times",
    "Great value for the money, would buy again",
    "The app crashes every time I open the orders page",
    "Agent [NAME] solved my problem in five minutes, thank you",
    "I was charged twice and still waiting for the refund",
    "Delivery was fast and the packaging was nice",
    "Prices went up again and the quality went down",
    "Setup instructions were confusing, took me an hour",
    "Staff at the store were friendly and helpful",
)

GENERATE = f"""
INSERT INTO {{db}}.signals ({', '.join(SIGNAL_COLUMNS)})
SELECT
    concat('sig-', toString(id)), toString(id),
    if(ch IN ('social', 'review'), 'indirect', 'direct'), ch,
    multiIf(ch = 'survey', if(h % 2 = 0, 'typeform', 'qualtrics'), ch = 'chat', 'intercom', ch = 'email', 'zendesk',
            ch = 'call', 'genesys', ch = 'social', if(h % 2 = 0, 'x', 'reddit'),
            ['trustpilot', 'google_maps', 'app_store'][1 + h % 3]),
    ['acme', 'acme', 'globex', 'initech'][1 + bitShiftRight(h, 40) % 4],
    if(ch IN ('social', 'review') AND bitShiftRight(h, 44) % 4 != 0, NULL, concat('c-', toString(bitShiftRight(h, 20) % 150000))),
    if(ch IN ('social', 'review'), concat('@user', toString(bitShiftRight(h, 20) % 300000)), NULL),
    at, at + toIntervalSecond(30), at + toIntervalSecond(31),
    {list(TEXTS)}[1 + bitShiftRight(h, 12) % {len(TEXTS)}], [], 'en',
    if(ch = 'survey', metric, NULL),
    if(ch = 'survey', multiIf(metric = 'nps', greatest(0, least(10, round((score + 1) * 5))),
                              metric = 'csat', 1 + greatest(0, least(4, round((score + 1) * 2))),
                              1 + greatest(0, least(6, round((score + 1) * 3)))), NULL),
    if(ch = 'survey', multiIf(metric = 'nps', 0, 1), NULL),
    if(ch = 'survey', multiIf(metric = 'nps', 10, metric = 'csat', 5, 7), NULL),
    NULL,
    if(bitShiftRight(h2, 16) % 3 = 0 AND t2 != t1, [{list(TOUCHPOINTS)}[t1], {list(TOUCHPOINTS)}[t2]], [{list(TOUCHPOINTS)}[t1]]),
    {list(STAGES)}[t1],
    multiIf(score > 0.25, 'positive', score < -0.25, 'negative', 'neutral'), score,
    multiIf(score < -0.25 AND bitShiftRight(h, 32) % 3 = 0, ['frustration'], score < -0.6 AND bitShiftRight(h, 32) % 3 = 1, ['anger'],
            score > 0.5 AND bitShiftRight(h, 32) % 4 = 0, ['joy', 'gratitude'], []),
    NULL, map(), 'bench', {list(TOUCHPOINTS)}[t1]
FROM (
    SELECT number + {{offset:UInt64}} AS id, cityHash64(id) AS h, sipHash64(id) AS h2,
           ['survey', 'chat', 'email', 'call', 'social', 'review'][1 + h % 6] AS ch,
           ['nps', 'csat', 'ces'][1 + bitShiftRight(h, 8) % 3] AS metric,
           1 + h2 % {len(TOUCHPOINTS)} AS t1, 1 + bitShiftRight(h2, 8) % {len(TOUCHPOINTS)} AS t2,
           toFloat32(greatest(-1, least(1, {list(MOOD)}[t1] + (bitShiftRight(h2, 24) % 1000 / 1000 - 0.5) * 1.6))) AS score,
           {{end:DateTime64(3, 'UTC')}} - toIntervalSecond(h2 % (180 * 86400)) AS at
    FROM numbers({{count:UInt64}})
)
"""


def load(store: Store, n: int, end: datetime) -> None:
    batch = max(1, n // 10)
    for offset in range(0, n, batch):
        insert(store, offset, min(batch, n - offset), end)
    insert(store, 0, n // 50, end)  # 2% delivered twice


def insert(store: Store, offset: int, count: int, end: datetime) -> None:
    sql = GENERATE.replace("{db}", store.database)
    store.client.command(sql, parameters={"offset": offset, "count": count, "end": end})


def median_s(fn: Callable[[], object], runs: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(n: int = 1_000_000) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    week = Filters(since=now - timedelta(days=7))
    month = Filters(since=now - timedelta(days=30))
    with tempfile.TemporaryDirectory(prefix="touchpoint-bench-") as tmp:
        store = Store(f"chdb://{tmp}", "bench")
        store.migrate()
        start = time.perf_counter()
        load(store, n, now)
        load_s = time.perf_counter() - start
        physical = store.query("SELECT count() AS n FROM {db}.signals")[0]["n"]
        logical = store.query("SELECT count() AS n FROM {db}.signals FINAL")[0]["n"]
        customer = store.query("SELECT any(customer_id) AS c FROM {db}.signals WHERE customer_id IS NOT NULL")[0]["c"]
        print(f"loaded {physical:,} rows ({logical:,} distinct signals) in {load_s:.1f}s")
        cases: dict[str, Callable[[], object]] = {
            "baseline: count() FROM signals FINAL": lambda: store.query("SELECT count() FROM {db}.signals FINAL" + FINAL_SETTINGS),
            "count() FROM signals (no FINAL)": lambda: store.query("SELECT count() FROM {db}.signals"),
            "NPS by touchpoint, last 7 days": lambda: metric_by(store, "nps", "touchpoint", week),
            "NPS by touchpoint, 7d vs previous 7d": lambda: metric_by(store, "nps", "touchpoint", week, compare=True),
            "NPS by touchpoint, all 180 days": lambda: metric_by(store, "nps", "touchpoint"),
            "NPS by touchpoint, mentions, 180 days": lambda: metric_by(store, "nps", "touchpoint", view="mentions"),
            "net sentiment by week, all": lambda: metric_by(store, "sentiment", "week"),
            "net sentiment by touchpoint x week": lambda: metric_rows(store, "sentiment", ("touchpoint", "week")),
            "CSAT by stage, last 30 days": lambda: metric_by(store, "csat", "stage", month),
            "CES by channel, brand acme": lambda: metric_by(store, "ces", "channel", Filters(brand="acme")),
            "volume by day, last 30 days": lambda: metric_by(store, "volume", "day", month),
            "volume by source": lambda: metric_by(store, "volume", "source"),
            "emotion shares by touchpoint, 30 days": lambda: metric_by(store, "emotions", "touchpoint", month),
            "top negative touchpoints + verbatims, 30d": lambda: top_negative(store, month),
            "one customer's journey": lambda: journey(store, customer),
        }
        fresh = {name: median_s(fn) for name, fn in cases.items()}
        store.client.command(f"OPTIMIZE TABLE {store.database}.signals FINAL")  # what background merges converge to
        merged = {name: median_s(fn) for name, fn in cases.items()}
        store.close()
    print(f"{'query':44} {'as loaded ms':>12} {'x base':>7} {'merged ms':>10} {'x base':>7}")
    for name in cases:
        print(
            f"{name:44} {fresh[name] * 1000:12.1f} {fresh[name] / next(iter(fresh.values())):7.2f}"
            f" {merged[name] * 1000:10.1f} {merged[name] / next(iter(merged.values())):7.2f}"
        )
    for label, results in (("as loaded (unmerged parts)", fresh), ("after merges", merged)):
        worst = max(results, key=lambda name: results[name])
        print(f"slowest query {label}: {worst} at {results[worst] * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
