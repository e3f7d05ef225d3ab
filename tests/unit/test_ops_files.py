"""deploy/prometheus and deploy/grafana: promtool checks the config and rules and runs the
rule unit tests; dashboards are well formed and their SQL runs on ClickHouse (chdb) against
the migrated schema. (Their PromQL runs on a real Prometheus in
tests/integration/test_observability.py.)"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from tests.ops_queries import DEPLOY, alert_rules, dashboard, dashboard_annotation_sql, dashboard_sql, panels
from touchpoint.pipeline.store import Store

PROMETHEUS_DIR = DEPLOY / "prometheus"
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: run `make system-deps` (Debian package prometheus)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["promtool", *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@needs_promtool
def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    promtool("test", "rules", "alerts_test.yml")


def test_every_alert_has_a_runbook_summary_and_severity() -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert names == {
        "TouchpointWorkerDown", "TouchpointConsumerLagGrowing", "TouchpointEndToEndLatencyHigh",
        "TouchpointDeadLetterRateHigh", "TouchpointConnectorStalled", "TouchpointClickHouseInsertFailures",
        "TouchpointCommitsStalled", "TouchpointCaseSlaBreached",
    }  # fmt: skip
    for rule in rules:
        assert rule["annotations"]["runbook"].strip() and rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_alert_unit_tests_cover_every_alert() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in alert_rules()}


def provisioned_datasources() -> dict[str, str]:
    path = DEPLOY / "grafana" / "provisioning" / "datasources" / "touchpoint.yaml"
    return {ds["uid"]: ds["type"] for ds in yaml.safe_load(path.read_text())["datasources"]}


@pytest.mark.parametrize("name", ["touchpoint-ops", "touchpoint-cx"])
def test_dashboard_structure(name: str) -> None:
    board = dashboard(name)
    sources = provisioned_datasources()
    assert board["uid"] == name and board["title"]
    found = list(panels(board))
    ids = [p["id"] for p in found]
    assert found and len(ids) == len(set(ids)), f"panel ids must be unique: {ids}"
    for panel in found:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in [panel, *panel["targets"]]:
            ds = target["datasource"]
            assert sources.get(ds["uid"]) == ds["type"], f"{panel['title']}: unknown data source {ds}"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "touchpoint.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_ops_dashboard_covers_what_ops_watch() -> None:
    exprs = " ".join(t["expr"] for p in panels(dashboard("touchpoint-ops")) for t in p["targets"])
    for metric in ("touchpoint_enrich_events_out_total", "touchpoint_consumer_lag_messages",
                   "touchpoint_end_to_end_seconds_bucket", "touchpoint_sink_insert_failures_total",
                   "touchpoint_dead_letters_total"):  # fmt: skip
        assert metric in exprs


def test_cx_dashboard_sql_runs_on_the_migrated_schema(store: Store) -> None:
    now = datetime.now(timezone.utc)
    rows = [
        ("s1", "r1", "direct", "survey", "typeform", "acme", now - timedelta(days=1), "nps", 10.0, ["delivery"], "positive"),
        ("s2", "r2", "direct", "survey", "typeform", "acme", now - timedelta(days=1), "nps", 2.0, ["delivery"], "negative"),
        ("s2", "r2", "direct", "survey", "typeform", "acme", now - timedelta(days=1), "nps", 2.0, ["delivery"], "negative"),
        ("s3", "r3", "indirect", "review", "trustpilot", "acme", now - timedelta(days=2), None, None, ["mobile_app"], "neutral"),
    ]  # s2 twice: FINAL must count it once
    columns = ["signal_id", "source_id", "kind", "channel", "source", "brand", "occurred_at", "score_metric",
               "score_value", "touchpoints", "sentiment_label"]  # fmt: skip
    full = [[*r[:7], r[6], r[6], *r[7:], "en", "delivery_onboarding", "test"] for r in rows]
    store.client.insert(f"{store.database}.signals", full, column_names=[
        *columns[:7], "ingested_at", "enriched_at", *columns[7:], "language", "journey_stage", "model_version"])  # fmt: skip
    queries = [sql for sql in dashboard_sql(store.database) if ".cases " not in sql]
    assert len(queries) == 8
    results = [store.query(sql) for sql in queries]
    assert results[0] == [{"signals": 3}]
    assert results[1][0]["nps"] == 0.0 and results[1][0]["n"] == 2
    scores = {row["touchpoint"]: row for row in results[-2]}  # primary: each response once
    assert scores["delivery"]["nps"] == 0.0 and scores["delivery"]["nps_n"] == 2 and set(scores) == {"delivery"}
    sentiment = {row["touchpoint"]: row for row in results[-1]}  # mentions
    assert sentiment["mobile_app"]["net_sentiment"] == 0.0 and sentiment["mobile_app"]["n"] == 1
    volume = {(row["channel"]) for row in results[5]}
    assert volume == {"survey", "review"}


def test_cx_dashboard_marks_alerts_as_annotations(store: Store) -> None:
    from touchpoint.pipeline.alerts.ledger import Alert, alert_id, write

    board = dashboard("touchpoint-cx")
    [annotation] = board["annotations"]["list"]
    assert provisioned_datasources()[annotation["datasource"]["uid"]] == annotation["datasource"]["type"]
    now = datetime.now(timezone.utc)
    key = ("acme", "touchpoint", "delivery", "nps")
    # An alert as pipeline/alerts/ledger.py stores it (its numbers are illustrative; the query's shape is tested).
    alert = Alert(
        alert_id=alert_id(key, now - timedelta(days=2)), brand="acme", dimension="touchpoint", value="delivery",
        metric="nps", direction="down", state="open", opened_at=now - timedelta(days=2), updated_at=now - timedelta(days=1),
        resolved_at=None, window_start=now - timedelta(days=3), window_end=now - timedelta(days=2), current=5.0,
        current_low=0.0, current_high=10.0, expected=25.0, expected_low=18.0, expected_high=32.0, n=800,
        baseline_n=3200, baseline_windows=4, score=-5.1, p_value=1e-7, q=7e-4, summary="NPS drop at touchpoint delivery",
    )  # fmt: skip
    write(store, [alert, replace(alert, alert_id="old", opened_at=now - timedelta(days=60), resolved_at=now - timedelta(days=59))])
    [query] = dashboard_annotation_sql(store.database)
    rows = store.query(query)
    assert [set(r) for r in rows] == [{"time", "timeEnd", "text", "tags"}]  # Grafana's annotation columns
    assert rows[0]["text"] == "OPEN: NPS drop at touchpoint delivery"  # the 60-day-old one is outside the range
    assert rows[0]["tags"] == "nps,touchpoint:delivery,acme" and rows[0]["timeEnd"] > rows[0]["time"]


def test_cx_dashboard_loop_panels_agree_with_the_loop_metrics(store: Store) -> None:
    """The "Closing the loop" panels read cases FINAL like pipeline/loop_metrics.py and give the same numbers."""
    from tests.cx_rows import signal
    from touchpoint.pipeline.cases import record_actions, transition
    from touchpoint.pipeline.loop_metrics import loop_rows, open_now
    from touchpoint.pipeline.queries import Filters
    from touchpoint.pipeline.routing import action_record
    from touchpoint.pipeline.rules import Route, SignalFacts

    now = datetime.now(timezone.utc)
    actions = [
        action_record(SignalFacts.from_record(signal(i, customer_id=f"c{i}", touchpoints=[tp], enriched_at=now - timedelta(days=2))),
                      Route("r", team, "high", timedelta(hours=sla), (), tp), "v1")
        for i, (team, tp, sla) in enumerate([("app", "mobile_app", 24), ("app", "mobile_app", 24), ("app", "checkout", 100), ("care", "contact_center", 1)])
    ]  # fmt: skip
    cases = record_actions(store, actions)
    transition(store, cases[0].case_id, "acknowledge", "ana", now=now - timedelta(days=2) + timedelta(hours=2))
    transition(store, cases[0].case_id, "close", "ana", note="done", now=now - timedelta(days=2) + timedelta(hours=5))
    transition(store, cases[1].case_id, "close", "ana", note="late", now=now)
    loop_sql = [sql for sql in dashboard_sql(store.database) if ".cases " in sql]
    assert len(loop_sql) == 7
    results = [store.query(sql) for sql in loop_sql]
    assert results[0] == [{"open_cases": 2, "past_sla": 1}]  # care's 1h case is past due; app/checkout (100h) is not
    assert results[1] == [{"close_rate": 25.0, "routed": 4}]
    assert results[2] == [{"sla_breaches": 2, "routed": 4}]
    assert results[3] == [{"median_ack_h": 2.0, "median_close_h": 26.5, "routed": 4}]
    by_team_priority = [{k: r[k] for k in ("team", "priority", "open_total")} for r in results[4]]
    assert by_team_priority == [{k: r[k] for k in ("team", "priority", "open_total")} for r in open_now(store)]
    expected = loop_rows(store, Filters(since=now - timedelta(days=30)), ("team", "touchpoint"))
    assert [(r["team"], r["touchpoint"], r["n"], r["close_rate"], r["sla_breaches"]) for r in results[5]] == [
        (r["team"], r["touchpoint"], r["n"], r["close_rate"], r["sla_breaches"]) for r in expected
    ]
    assert sum(row["cases"] for row in results[6]) == 4
