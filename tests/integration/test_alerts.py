"""Alerts on a real chdb store: steady weeks raise nothing; injected changes are caught, explained,
deduplicated while they last, and resolved when they end.

Five weeks of one brand with real texts and known injected changes: tests/alert_rows.py.
"""

from __future__ import annotations

from datetime import timedelta

from tests.alert_rows import BATTERY, NPS_DROP_FROM, SPIKE, T0, WEEK5, signals
from tests.cx_rows import store_signals
from touchpoint.pipeline.alerts.ledger import open_alerts, recent_alerts
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.store import Store


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


def test_touchpoint_watch_prints_alerts_with_numbers_and_why(store: Store, settings, capsys, monkeypatch) -> None:
    import json

    from touchpoint.cli import main

    store_signals(store, signals(SPIKE[1], changes=True))
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_URL", settings.clickhouse_url)
    monkeypatch.setenv("TOUCHPOINT_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    at = (SPIKE[0] + timedelta(hours=3, minutes=10)).isoformat()
    assert main(["watch", "--at", at]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ALERT volume spike (signals) at touchpoint product_quality (acme)" in out
    assert "n=" in out and "why: battery" in out and "by channel: review" in out
    assert main(["watch", "--at", at, "--format", "json"]) == 0  # the same window again: nothing new opens
    captured = capsys.readouterr()
    assert captured.out == "" and "0 opened" in " ".join(captured.err.split())
    later = (SPIKE[1] + timedelta(hours=4)).isoformat()
    assert main(["watch", "--at", later, "--format", "json"]) == 0
    resolved = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {a["state"] for a in resolved} >= {"resolved"} and all("explanation" in a for a in resolved)
