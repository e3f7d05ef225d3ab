"""Attribution (issue 13; shared/DESIGN.md): a score counts once, under the response's primary touchpoint (the
survey's hint when given, else the top tag); "mentions" (every tag) is a separate, named view. ClickHouse (chdb)
against plain Python over the same rows, the real enrich and sink stages, the CLI and the Grafana panel."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.cx_rows import insert_into_older_schema, signal, store_signals
from tests.ops_queries import dashboard, panels, sql
from touchpoint.core.sealing import Sealer
from touchpoint.pipeline.enrichment import EnrichStage, Incoming, models_for, primary_touchpoint
from touchpoint.pipeline.metrics_sql import METRICS, VIEWS
from touchpoint.pipeline.queries import metric_by, top_negative
from touchpoint.pipeline.sink import SinkStage, signal_row
from touchpoint.pipeline.store import AsyncStore, Store, migrations
from touchpoint.schemas.codec import AvroCodec
from touchpoint.schemas.signal import RawSignal, Score

KNOWN = ("delivery", "checkout", "mobile_app", "billing", "store_staff", "pricing")  # ids in models/taxonomy.yaml
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


# --- the reference, written from shared/DESIGN.md ----------------------------------------------------------

def primary_by_hand(record: dict[str, Any]) -> str:
    """The survey's hint when given (and the taxonomy knows it, so the tagger kept it), else the top tag."""
    hint, tags = record["touchpoint_hint"], record["touchpoints"]
    if hint in KNOWN and hint in tags:
        return hint
    return tags[0] if tags else "untagged"


def nps(values: list[float]) -> float:
    return round(100 * (sum(v >= 9 for v in values) - sum(v <= 6 for v in values)) / len(values), 1)


def csat(values: list[float]) -> float:
    return round(100 * sum(v >= 4 for v in values) / len(values), 1)


def ces(values: list[float]) -> float:
    return round(sum(values) / len(values), 2)


BY_HAND = {"nps": nps, "csat": csat, "ces": ces}


def responses(count: int = 300, seed: int = 13) -> list[dict[str, Any]]:
    """Survey responses like the issue's: many carry a hint, the model adds up to two more tags. A third were
    stored before primary_touchpoint existed (None: the query's fallback applies); "check_in" is a hint the
    taxonomy does not know (the tagger drops it)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        metric = rng.choice(["nps", "nps", "csat", "ces"])
        low, high = SCALES[metric]
        hint = rng.choice([None, None, None, *KNOWN, "check_in"])
        tags = rng.sample(KNOWN, rng.choice([0, 1, 2, 3]))
        if hint in KNOWN:  # models/touchpoints.py: a known hint leads, the model's tags follow (3 at most)
            tags = [hint, *[t for t in tags if t != hint]][:3]
        stored = primary_touchpoint(hint, tags) if i % 3 else None
        rows.append(signal(i, metric=metric, value=rng.randint(low, high), touchpoints=tags, touchpoint_hint=hint,
                           primary_touchpoint=stored))  # fmt: skip
    return rows


def scores_by(records: list[dict[str, Any]], metric: str, key) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    groups: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r["score"]["metric"] == metric:
            for k in key(r):
                groups[k].append(r["score"]["value"])
    return groups


@pytest.fixture
def surveyed(store: Store) -> list[dict[str, Any]]:
    return store_signals(store, responses())


# --- the primary view: n adds up --------------------------------------------------------------------------

def test_scores_by_touchpoint_count_each_response_once(store: Store, surveyed) -> None:
    for metric in ("nps", "csat", "ces"):
        expected = scores_by(surveyed, metric, lambda r: [primary_by_hand(r)])
        rows = {r["touchpoint"]: r for r in metric_by(store, metric, "touchpoint", min_n=3)}
        assert sum(r["n"] for r in rows.values()) == sum(r["score"]["metric"] == metric for r in surveyed), metric
        assert {k: (r[metric], r["n"]) for k, r in rows.items()} == {
            k: (BY_HAND[metric](v), len(v)) for k, v in expected.items()
        }, metric
        assert {r["view"] for r in rows.values()} == {"primary"}


def test_the_mentions_view_counts_every_tag_and_says_so(store: Store, surveyed) -> None:
    for metric in ("nps", "csat", "ces"):
        expected = scores_by(surveyed, metric, lambda r: r["touchpoints"] or ["untagged"])
        rows = metric_by(store, metric, "touchpoint", view="mentions")
        assert {r["touchpoint"]: r["n"] for r in rows} == {k: len(v) for k, v in expected.items()}
        assert {r["view"] for r in rows} == {"mentions"}
    primary_n = sum(r["n"] for r in metric_by(store, "nps", "touchpoint"))
    mentions_n = sum(r["n"] for r in metric_by(store, "nps", "touchpoint", view="mentions"))
    assert mentions_n > primary_n  # the 544 for 300: why mentions must never pass for scores


def test_a_hint_wins_over_the_model_tags(store: Store) -> None:
    store_signals(store, [
        signal(1, metric="nps", value=2, touchpoint_hint="checkout", touchpoints=["checkout", "store_staff"]),
        signal(2, metric="nps", value=10, touchpoint_hint=None, touchpoints=["store_staff", "checkout"]),
    ])  # fmt: skip  # both stored before primary_touchpoint existed: the fallback decides
    rows = {r["touchpoint"]: (r["nps"], r["n"]) for r in metric_by(store, "nps", "touchpoint")}
    assert rows == {"checkout": (-100.0, 1), "store_staff": (100.0, 1)}
    assert primary_touchpoint("checkout", ["checkout", "store_staff"]) == "checkout"
    assert primary_touchpoint("check_in", ["store_staff"]) == "store_staff"  # a hint the taxonomy lacks: top tag
    assert primary_touchpoint(None, []) is None


def test_the_stored_primary_is_what_counts(store: Store) -> None:
    """Negative control for the column: a stored primary other than what the fallback would pick wins."""
    store_signals(store, [signal(1, metric="csat", value=5, touchpoints=["delivery", "billing"], primary_touchpoint="billing")])
    assert [(r["touchpoint"], r["n"]) for r in metric_by(store, "csat", "touchpoint")] == [("billing", 1)]
    store_signals(store, [signal(2, metric="csat", value=5, touchpoints=["delivery", "billing"])])
    assert {r["touchpoint"]: r["n"] for r in metric_by(store, "csat", "touchpoint")} == {"billing": 1, "delivery": 1}


def test_rows_stored_before_the_column_existed_fall_back_to_hint_then_first_tag(settings) -> None:
    """A database at migration 005 with rows in it, then migrated: the rows read through the fallback."""
    old = Store(settings.clickhouse_url, settings.clickhouse_database + "_pre6")
    try:
        old.client.command(f"CREATE DATABASE IF NOT EXISTS {old.database}")
        for migration in [m for m in migrations() if m.version < 6]:
            for statement in migration.statements(old.database):
                if statement.when is None or old.client.command(statement.when) in (1, "1"):
                    old.client.command(statement.sql)
        records = [
            signal(1, metric="nps", value=9, touchpoint_hint="checkout", touchpoints=["checkout", "billing"]),
            signal(2, metric="nps", value=3, touchpoint_hint="check_in", touchpoints=["billing", "checkout"]),
            signal(3, metric="nps", value=10, touchpoint_hint=None, touchpoints=["billing"]),
            signal(4, metric="nps", value=0, touchpoint_hint=None, touchpoints=[], label=None),
        ]  # fmt: skip
        insert_into_older_schema(old, [signal_row(r) for r in records])
        old.client.command(
            f"CREATE TABLE IF NOT EXISTS {old.database}.schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        old.client.insert(f"{old.database}.schema_migrations", [[m.version, m.name] for m in migrations() if m.version < 6],
                          ["version", "name"])  # fmt: skip
        assert "006_primary_touchpoint.sql" in old.migrate()
        rows = {r["touchpoint"]: (r["n"], r["nps"]) for r in metric_by(old, "nps", "touchpoint")}
        assert rows == {"checkout": (1, 100.0), "billing": (2, 0.0), "untagged": (1, -100.0)}
        assert {r["touchpoint"]: r["n"] for r in metric_by(old, "nps", "touchpoint")} == {
            k: len(v) for k, v in scores_by(records, "nps", lambda r: [primary_by_hand(r)]).items()
        }
    finally:
        old.client.command(f"DROP DATABASE IF EXISTS {old.database}")
        old.close()


def test_views_are_named_checked_and_defined() -> None:
    assert set(VIEWS) == {"primary", "mentions"}
    for name in ("nps", "csat", "ces"):
        assert METRICS[name].view == "primary" and "once, under its primary touchpoint" in METRICS[name].description
    for name in ("sentiment", "emotions", "volume"):
        assert METRICS[name].view == "mentions" and "every touchpoint it mentions" in METRICS[name].description


def test_a_view_is_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="choose one of primary, mentions"):
        metric_by(store, "nps", "touchpoint", view="everything")
    with pytest.raises(ValueError, match="only when grouping by touchpoint"):
        metric_by(store, "nps", "channel", view="primary")
    assert "view" not in (metric_by(store, "volume", "channel") or [{}])[0]


def test_top_negative_shows_nps_once_per_response(store: Store, surveyed) -> None:
    negatives = [signal(1000 + i, label="negative", touchpoints=[tp]) for i, tp in enumerate(KNOWN)]
    store_signals(store, negatives)
    expected = {k: (nps(v), len(v)) for k, v in scores_by(surveyed, "nps", lambda r: [primary_by_hand(r)]).items()}
    for row in top_negative(store, min_n=1, limit=50, verbatims=0):
        assert (row["nps"], row["nps_n"]) == expected.get(row["touchpoint"], (None, 0)), row["touchpoint"]


# --- the enrich stage decides, with the real models -------------------------------------------------------

def raw(source_id: str, text: str, hint: str | None) -> Incoming:
    signal_ = RawSignal(
        source="typeform", source_id=source_id, channel="survey", brand="acme",
        occurred_at=datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc), text=text, score=Score("nps", 4, 0, 10),
        touchpoint_hint=hint,
    )  # fmt: skip
    return Incoming(None, AvroCodec.for_subject("raw_signal").encode(signal_.to_record()), "t.raw", 0, int(source_id))


async def test_the_enrich_stage_stores_the_primary_touchpoint(enricher, store: Store, settings) -> None:
    billing = "I was charged twice this month and the invoice still shows the wrong amount."
    stage = EnrichStage(models_for(settings, enricher), Sealer.from_settings(settings))
    result = await stage.process([raw("1", billing, "delivery"), raw("2", billing, None), raw("3", billing, "check_in"),
                                  raw("4", "It was ok.", "checkout")])  # fmt: skip
    codec = AvroCodec.for_subject("enriched_signal")
    records = [codec.decode(value) for _, value in result.outputs]
    hinted, plain, unknown, ok = records
    assert hinted["primary_touchpoint"] == "delivery" == hinted["touchpoints"][0]
    assert plain["primary_touchpoint"] == plain["touchpoints"][0] != "delivery"  # negative control: the hint moved it
    assert unknown["primary_touchpoint"] == plain["primary_touchpoint"]  # a hint the taxonomy lacks is not used
    assert ok["primary_touchpoint"] == "checkout"
    sink = SinkStage(AsyncStore(store.url, store.database))
    assert await sink.process([Incoming(None, value, "t.enriched", 0, i) for i, (_, value) in enumerate(result.outputs)]) == []
    await sink.store.close()
    rows = {r["touchpoint"]: r["n"] for r in metric_by(store, "nps", "touchpoint")}
    assert sum(rows.values()) == 4 and rows["delivery"] == 1 and rows["checkout"] == 1
    mentions = sum(r["n"] for r in metric_by(store, "nps", "touchpoint", view="mentions"))
    assert mentions == sum(len(r["touchpoints"]) for r in records)


# --- what the CLI and Grafana say --------------------------------------------------------------------------

def test_touchpoint_query_names_its_view(store: Store, settings, surveyed, capsys, monkeypatch) -> None:
    from touchpoint.cli import main

    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_URL", settings.clickhouse_url)
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert main(["query", "nps", "--by", "touchpoint", "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert sum(r["n"] for r in rows) == sum(r["score"]["metric"] == "nps" for r in surveyed)
    assert {r["view"] for r in rows} == {"primary"} and "primary view: each signal counts once" in " ".join(captured.err.split())
    assert main(["query", "nps", "--by", "touchpoint", "--view", "mentions", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert {r["view"] for r in json.loads(captured.out)} == {"mentions"} and "mentions view:" in captured.err
    assert main(["query", "nps", "--by", "channel", "--view", "mentions"]) == 2
    assert "only when grouping by touchpoint" in capsys.readouterr().err


def test_the_grafana_scores_panel_counts_each_response_once(store: Store, surveyed) -> None:
    board = {p["title"]: p for p in panels(dashboard("touchpoint-cx"))}
    scores = board["Scores by touchpoint (primary: each response once, with counts)"]
    assert "primary touchpoint" in scores["description"]
    assert "(mentions: every tag)" in board["Net sentiment by touchpoint over time (mentions: every tag)"]["title"]
    assert "attributed_touchpoint" in board["NPS by touchpoint over time (primary: each response once)"]["targets"][0]["rawSql"]
    text = sql(scores["targets"][0]["rawSql"], store.database).replace("now() - INTERVAL 30 DAY", "toDateTime64('2000-01-01', 3)")
    got = {r["touchpoint"]: r for r in store.query(text)}
    for metric in ("nps", "csat", "ces"):
        api = {r["touchpoint"]: (r[metric], r["n"]) for r in metric_by(store, metric, "touchpoint")}
        assert {k: (r[metric], r[f"{metric}_n"]) for k, r in got.items() if r[f"{metric}_n"]} == api, metric


def test_offline_enrichment_says_where_a_score_would_count(settings) -> None:
    import io

    from touchpoint.pipeline.offline import enrich_jsonl

    lines = [{"text": "It was ok.", "touchpoint": "checkout", "nps": 7}, {"text": "The app keeps crashing on login."}]
    out = io.StringIO()
    assert enrich_jsonl(settings, io.StringIO("\n".join(json.dumps(x) for x in lines)), out) == 2
    hinted, plain = [json.loads(line) for line in out.getvalue().splitlines()]
    assert hinted["primary_touchpoint"] == "checkout" and plain["primary_touchpoint"] == plain["touchpoints"][0]
