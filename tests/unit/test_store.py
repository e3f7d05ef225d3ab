"""ClickHouse (chdb, the real engine) through clickhouse-connect: DDL, dedup, metrics."""

from datetime import datetime, timedelta, timezone

import pytest

from tests.cx_rows import insert_into_older_schema
from touchpoint.pipeline.queries import Filters, metric_by, touchpoint_summary
from touchpoint.pipeline.sink import signal_row
from touchpoint.pipeline.store import Store, migrations
from touchpoint.pipeline.store_errors import StoreAction, StoreError

T0 = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)


def enriched(i: int, *, nps: float | None = None, label: str = "neutral", touchpoints=("delivery",), **extra) -> dict:
    return {
        "signal_id": f"sig-{i}", "source_id": str(i), "kind": "direct", "channel": "survey", "source": "typeform",
        "brand": "acme", "customer_id": None, "author": None, "occurred_at": T0 + timedelta(hours=i),
        "ingested_at": T0, "enriched_at": T0, "text_redacted": f"text {i} about the order",
        "pii_found": [], "language": "en",
        "score": {"metric": "nps", "value": nps, "scale_min": 0, "scale_max": 10} if nps is not None else None,
        "touchpoint_hint": None, "touchpoints": list(touchpoints), "journey_stage": "delivery_onboarding",
        "sentiment_label": label, "sentiment_score": {"positive": 0.8, "negative": -0.8}.get(label, 0.0),
        "emotions": [], "url": None, "attributes": {}, "model_version": "test", **extra,
    }  # fmt: skip


def nps_by_hand(scores: list[float]) -> float:
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    return round(100 * (promoters - detractors) / len(scores), 1)


def test_migrate_is_idempotent_and_versioned(store) -> None:
    assert store.migrate() == []
    versions = [r["version"] for r in store.query("SELECT version FROM {db}.schema_migrations FINAL ORDER BY version")]
    assert versions == [m.version for m in migrations()]


def test_a_signal_stored_twice_counts_once(store) -> None:
    rows = [signal_row(enriched(i, nps=9)) for i in range(3)]
    store.insert_signals(rows)
    store.insert_signals(rows[:2])  # redelivery after a crash
    [volume] = metric_by(store, "volume", "brand")
    assert volume["volume"] == 3 and volume["n"] == 3
    assert store.count_stored(["sig-0", "sig-1", "sig-2", "sig-9"]) == 3


@pytest.mark.parametrize(
    "scores",
    [[0, 6, 7, 8, 9, 10], [7, 8, 7, 8], [10, 10, 10], [0, 0], [6, 9, 9, 3, 10, 7, 5]],
    ids=["mixed", "all-passives", "all-promoters", "all-detractors", "random"],
)
def test_nps_matches_an_independent_calculation(store, scores: list[float]) -> None:
    store.insert_signals([signal_row(enriched(i, nps=s)) for i, s in enumerate(scores)])
    [row] = metric_by(store, "nps", "channel")
    assert row["nps"] == nps_by_hand(scores)
    assert row["n"] == len(scores)


def test_no_responses_means_no_rows_not_zero(store) -> None:
    store.insert_signals([signal_row(enriched(1, nps=None))])
    assert metric_by(store, "nps", "touchpoint") == []


def test_net_sentiment_by_touchpoint_and_low_confidence(store) -> None:
    labels = ["positive", "positive", "negative", "neutral"]
    store.insert_signals([signal_row(enriched(i, label=l, touchpoints=("delivery", "pricing"))) for i, l in enumerate(labels)])
    rows = {r["touchpoint"]: r for r in metric_by(store, "sentiment", "touchpoint", min_n=5)}
    assert set(rows) == {"delivery", "pricing"}
    assert rows["delivery"]["sentiment"] == round(100 * (2 - 1) / 4, 1)
    assert rows["delivery"]["low_confidence"] is True


def test_filters_are_bound_parameters(store) -> None:
    store.insert_signals([signal_row(enriched(i, nps=10)) for i in range(4)])
    hostile = Filters(brand="acme' OR 1=1 --")
    assert metric_by(store, "volume", "brand", hostile) == []
    since = Filters(since=T0 + timedelta(hours=2))
    assert metric_by(store, "volume", "brand", since)[0]["n"] == 2


def test_touchpoint_summary_has_counts_and_a_verbatim(store) -> None:
    store.insert_signals([signal_row(enriched(i, nps=s, label="negative")) for i, s in enumerate([2, 9])])
    [row] = touchpoint_summary(store, ["sig-0", "sig-1"], min_n=3)
    assert row["touchpoint"] == "delivery" and row["n"] == 2 and row["nps"] == 0.0 and row["nps_n"] == 2
    assert row["verbatim"].startswith("text ")


def test_bad_rows_are_rejected_as_data_errors(store) -> None:
    bad = signal_row(enriched(1))
    bad[8] = "not a timestamp"  # occurred_at
    with pytest.raises(StoreError) as caught:
        store.insert_signals([bad])
    assert caught.value.action is StoreAction.BAD_ROWS


def test_unknown_metric_or_dimension_names_the_choices(store) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        metric_by(store, "happiness", "brand")
    with pytest.raises(ValueError, match="choose one of"):
        metric_by(store, "nps", "planet")


def test_a_correction_that_moves_brand_or_time_stays_one_row(store) -> None:
    """Re-importing a signal with its brand and occurred_at corrected replaces it: one row per signal_id."""
    first = enriched(1, nps=3)
    corrected = {**first, "brand": "globex", "occurred_at": T0 + timedelta(days=45), "enriched_at": T0 + timedelta(hours=1)}
    store.insert_signals([signal_row(first)])
    store.insert_signals([signal_row(corrected)])
    rows = store.query("SELECT brand, occurred_at FROM {db}.signals FINAL WHERE signal_id = 'sig-1'")
    assert len(rows) == 1 and rows[0]["brand"] == "globex"
    assert sum(r["n"] for r in metric_by(store, "nps", "brand")) == 1


def test_the_rekey_migration_keeps_every_signal_once_and_resumes_after_a_crash(settings) -> None:
    """Migration 003 on data in the old layout, interrupted after its swap step, then run again."""
    old = Store(settings.clickhouse_url, settings.clickhouse_database + "_old")
    try:
        first_two = [m for m in migrations() if m.version < 3]
        old.client.command(f"CREATE DATABASE IF NOT EXISTS {old.database}")
        for migration in first_two:
            for statement in migration.statements(old.database):
                old.client.command(statement.sql)
        rows = [signal_row(enriched(i, nps=i % 11)) for i in range(5)]
        moved = {**enriched(0, nps=10), "brand": "globex", "enriched_at": T0 + timedelta(hours=2)}
        insert_into_older_schema(old, [*rows, signal_row(moved)])  # the old key keeps both versions of sig-0
        assert old.query("SELECT count() AS n FROM {db}.signals FINAL")[0]["n"] == 6
        [rekey] = [m for m in migrations() if m.version == 3]
        for statement in rekey.statements(old.database)[:2]:  # create + swap, then the process dies
            old.client.command(statement.sql)
        old.client.command(
            f"CREATE TABLE IF NOT EXISTS {old.database}.schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        old.client.insert(f"{old.database}.schema_migrations", [[m.version, m.name] for m in first_two], ["version", "name"])
        assert old.migrate()[0] == rekey.name  # the rerun finishes the change instead of undoing it
        key = old.query("SELECT sorting_key FROM system.tables WHERE database = {d:String} AND name = 'signals'",
                        {"d": old.database})[0]["sorting_key"]  # fmt: skip
        assert key == "signal_id"
        by_id = {r["signal_id"]: r for r in old.query("SELECT signal_id, brand FROM {db}.signals FINAL")}
        assert len(by_id) == 5 and by_id["sig-0"]["brand"] == "globex", by_id
    finally:
        old.client.command(f"DROP DATABASE IF EXISTS {old.database}")
        old.close()
