"""Alerts as actions on the real stack: the Tansu broker, chdb, the loop's case stage, a local Slack
receiver; then the whole worker with its alert timer.

Signals: five weeks of one brand with real texts and a known volume spike (tests/alert_rows.py).
Routing rules are written for this test in the bundled file's format (cli/samples/routing_rules.yaml).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.alert_rows import SPIKE, signals
from tests.cx_rows import store_signals
from tests.polling import wait_for
from tests.webhook_inbox import WebhookInbox
from touchpoint.core.kafka import read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.pipeline.actions import ActionStage
from touchpoint.pipeline.alerts.actions import announce
from touchpoint.pipeline.alerts.detect import window_end
from touchpoint.pipeline.alerts.ledger import recent_alerts
from touchpoint.pipeline.alerts.watch import watch_once
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.rules import RulesSource, load_vocabulary
from touchpoint.pipeline.runtime import running_worker
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.schemas.codec import AvroCodec
from touchpoint.watch import ActionsProducer, rules_for

RULES = """
mode: first_match
destinations:
  product-slack: {{type: slack, url: "{url}"}}
rules:
  - name: product-complaints
    when: {{touchpoint_any: [product_quality], sentiment: negative}}
    team: product
    priority: high
    sla: 1d
    destinations: [{destinations}]
"""


def routed_settings(settings: Settings, tmp_path: Path, url: str = "http://127.0.0.1:9/unused", destinations: str = "") -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(url=url, destinations=destinations))
    return settings.with_overrides(
        routing_rules_path=str(rules), topic_actions=settings.topic_raw.replace("signals.raw", "cx.actions")
    )


async def actions_in_topic(settings: Settings) -> list[dict]:
    codec = AvroCodec.for_subject("action")
    return [codec.decode(record.value) for record in await read_topic_records(settings, settings.topic_actions)]


async def test_alerts_become_routed_actions_and_cases_that_close_when_resolved(store: Store, live_settings: Settings, tmp_path: Path) -> None:
    settings = routed_settings(live_settings, tmp_path)
    store_signals(store, signals(SPIKE[1] + timedelta(hours=6), changes=True))
    opened = watch_once(store, settings, SPIKE[0] + timedelta(hours=3, minutes=10)).opened
    spike = next(a for a in opened if a.key == ("acme", "touchpoint", "product_quality", "volume_spike"))
    async_store, producer = AsyncStore.from_settings(settings), ActionsProducer(settings)
    try:
        sent = await announce(async_store, settings, rules_for(settings), producer.send)
        assert sent == {"actions": len(opened), "closed": 0}  # one action per alert (first_match)
        actions = {a["origin_id"]: a for a in await actions_in_topic(settings)}
        assert set(actions) == {a.alert_id for a in opened}
        action = actions[spike.alert_id]
        assert (action["origin"], action["rule"], action["team"], action["priority"]) == ("alert", "product-complaints", "product", "high")
        assert action["subject"] == spike.alert_id and action["touchpoint"] == "product_quality"
        assert action["summary"].startswith(spike.summary) and "Said more than usual: " in action["summary"]
        assert action["attributes"]["n"] == str(spike.n)
        assert "battery" in action["attributes"]["terms"] and action["attributes"]["verbatim_1"]
        channel = next(a for a in opened if a.dimension == "channel")  # no rule is about channels
        assert (actions[channel.alert_id]["team"], actions[channel.alert_id]["rule"]) == ("cx-insights", "alerts")

        again = await announce(async_store, settings, rules_for(settings), producer.send)
        assert again == {"actions": 0, "closed": 0} and len(await actions_in_topic(settings)) == len(opened)

        # The loop's own case stage records them: one case per alert.
        stage = ActionStage(RulesSource(settings.routing_rules_path, load_vocabulary()), async_store, settings)
        records = await read_topic_records(settings, settings.topic_actions)
        await stage.process([Incoming(r.key, r.value, r.topic, r.partition, r.offset) for r in records])
        cases = store.query("SELECT subject, team, status FROM {db}.cases FINAL")
        assert {c["subject"] for c in cases} == {a.alert_id for a in opened} and {c["status"] for c in cases} == {"open"}

        later = watch_once(store, settings, SPIKE[1] + timedelta(hours=4))  # the spike is over
        assert spike.alert_id in {a.alert_id for a in later.resolved}
        closing = await announce(async_store, settings, rules_for(settings), producer.send)
        assert closing == {"actions": len(later.opened), "closed": len(later.resolved)}
        [case] = store.query(
            "SELECT status, updated_by, resolution_note FROM {db}.cases FINAL WHERE subject = {s:String}", {"s": spike.alert_id}
        )
        assert case["status"] == "closed" and case["updated_by"] == "touchpoint-alerts"
        assert "back within its expected range" in case["resolution_note"]
        assert {a.announced for a in recent_alerts(store) if a.state == "resolved"} == {"resolved"}
    finally:
        await producer.close()
        await async_store.close()


async def test_without_rules_alerts_wait_and_nothing_is_sent(store: Store, live_settings: Settings) -> None:
    """Negative control: no rules file, no routing; the alert is kept, unannounced, for when rules exist."""
    store_signals(store, signals(SPIKE[1], changes=True))
    assert watch_once(store, live_settings, SPIKE[0] + timedelta(hours=3, minutes=10)).opened
    async_store, producer = AsyncStore.from_settings(live_settings), ActionsProducer(live_settings)
    try:
        assert await announce(async_store, live_settings, None, producer.send) == {"actions": 0, "closed": 0}
        assert {a.announced for a in recent_alerts(store)} == {""}
    finally:
        await producer.close()
        await async_store.close()


async def test_the_worker_timer_raises_routes_and_delivers_alerts(store: Store, live_settings: Settings, enricher, tmp_path: Path) -> None:
    async with WebhookInbox() as inbox:
        settings = routed_settings(live_settings, tmp_path, inbox.url("/slack"), "product-slack").with_overrides(
            alert_watch_in_worker=True, alert_interval_s=1.0, actions_batch_window_s=0.2, delivery_retry_initial_s=0.05
        )
        # The scenario moved so that the spike's three hours end at the grid point the worker evaluates now.
        shift = window_end(datetime.now(timezone.utc), settings) - (SPIKE[0] + timedelta(hours=3))
        store_signals(store, [replace_time(s, shift) for s in signals(SPIKE[1], changes=True)])
        async with running_worker(settings, enricher):

            async def delivered() -> bool:
                return bool(inbox.at("/slack"))

            await wait_for(delivered, timeout_s=120)
        spike = next(a for a in recent_alerts(store) if a.key == ("acme", "touchpoint", "product_quality", "volume_spike"))
        [case] = store.query("SELECT team, status FROM {db}.cases FINAL WHERE subject = {s:String}", {"s": spike.alert_id})
        assert (case["team"], case["status"]) == ("product", "open") and spike.announced == "opened"
        messages = [str(hit.json()) for hit in inbox.at("/slack")]
        assert any("volume spike" in m and "product_quality" in m and "n=" in m for m in messages), messages


def replace_time(record: dict, shift: timedelta) -> dict:
    return {**record, "occurred_at": record["occurred_at"] + shift}
