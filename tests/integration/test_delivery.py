"""Delivery against a real local HTTP server (tests/webhook_inbox.py) that fails, answers 429 and then
succeeds, through the real case stage on chdb: retries with backoff and Retry-After, one idempotency key,
signed bodies the project's own receiver accepts, a per-destination pace, permanent failures dead-lettered
with the reason, the status recorded, and nothing sent twice on redelivery.

Answers follow the destinations' documentation: Slack incoming webhooks answer 200 "ok", and 429 with
Retry-After (seconds) when rate limited (Slack "Rate limits"); Retry-After may also be an HTTP date (RFC 9110).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.cx_rows import signal
from tests.webhook_inbox import WebhookInbox
from touchpoint.connectors.surveys import verify_generic
from touchpoint.core.settings import Settings
from touchpoint.pipeline.actions import ActionStage
from touchpoint.pipeline.enrichment import Incoming
from touchpoint.pipeline.routing import action_record
from touchpoint.pipeline.rules import Route, RulesSource, SignalFacts
from touchpoint.pipeline.store import AsyncStore, Store
from touchpoint.schemas.codec import AvroCodec

CODEC = AvroCodec.for_subject("action")
SECRET = "hmac-secret-for-tests"


def rules_file(tmp_path: Path, inbox: WebhookInbox, rate_per_minute: float | None = None) -> Path:
    rate = f", rate_per_minute: {rate_per_minute}" if rate_per_minute else ""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "destinations:\n"
        f"  slack: {{type: slack, url: '{inbox.url('/slack')}'{rate}}}\n"
        f"  tickets: {{type: webhook, url: '{inbox.url('/tickets')}'{rate}}}\n"
        "rules:\n  - {name: all, team: app, sla: 1d, destinations: [slack, tickets]}\n"
    )
    return path


def fast(settings: Settings, **changes) -> Settings:
    return settings.with_overrides(
        routing_destination_secrets={"tickets": SECRET}, delivery_retry_initial_s=0.05, delivery_retry_max_s=0.2,
        api_public_url="https://cx.example.com", **changes,
    )  # fmt: skip


def messages(*numbers: int, destinations: tuple[str, ...] = ("slack", "tickets")) -> list[Incoming]:
    found = []
    for i in numbers:
        record = signal(i, customer_id=f"cust-{i}", touchpoints=["mobile_app"], label="negative", metric="nps", value=2,
                        text_redacted=f"The app <crashed> & lost my basket, call me at [PHONE] #{i}")  # fmt: skip
        action = action_record(SignalFacts.from_record(record), Route("all", "app", "high", timedelta(days=1), destinations, "mobile_app"), "v1")
        found.append(Incoming(f"cust-{i}".encode(), CODEC.encode(action), "cx.actions", 0, i))
    return found


@pytest.fixture
async def stage_for(store: Store, settings: Settings, tmp_path: Path):
    opened: list[AsyncStore] = []

    def build(inbox: WebhookInbox, rate_per_minute: float | None = None, **changes) -> ActionStage:
        live = fast(settings, **changes)
        opened.append(AsyncStore.from_settings(live))  # the store fixture migrated its database
        return ActionStage(RulesSource(rules_file(tmp_path, inbox, rate_per_minute)), opened[-1], live)

    yield build
    for async_store in opened:
        await async_store.close()


async def test_fails_then_429_then_succeeds_with_one_idempotency_key(stage_for) -> None:
    async with WebhookInbox() as inbox:
        inbox.script("/slack", (500, {}), (429, {"Retry-After": "1"}))
        stage = stage_for(inbox)
        result = await stage.process(messages(1))
    slack, tickets = inbox.at("/slack"), inbox.at("/tickets")
    assert [hit.status for hit in slack] == [500, 429, 200]
    assert [hit.status for hit in tickets] == [200]  # control: a healthy destination is called once
    keys = {hit.headers["Idempotency-Key"] for hit in slack + tickets}
    assert keys == {result.recorded[0].action["action_id"]}
    assert slack[2].at - slack[1].at >= 0.95  # Retry-After: 1 was honoured (minus loopback transit)
    assert {(o.destination, o.delivered, o.attempts) for o in result.outcomes} == {("slack", True, 3), ("tickets", True, 1)}
    assert result.dead_letters == []


async def test_messages_carry_the_verbatim_scores_touchpoint_and_journey_link(stage_for) -> None:
    async with WebhookInbox() as inbox:
        result = await stage_for(inbox).process(messages(2))
    case_id = result.recorded[0].case_id
    [slack] = inbox.at("/slack")
    message = slack.json()
    assert "app" in message["text"] and "NPS 2" in message["text"]
    blocks = " ".join(str(b) for b in message["blocks"])
    assert "The app &lt;crashed&gt; &amp; lost my basket, call me at [PHONE]" in blocks  # redacted, escaped for Slack
    assert "<https://cx.example.com/api/v1/journey/cust-2|Customer journey>" in blocks and case_id in blocks
    [ticket] = inbox.at("/tickets")
    verify_generic(ticket.body, ticket.headers, SECRET, time.time(), 300)  # the project's own receiver accepts it
    body = ticket.json()
    assert (body["type"], body["case_id"], body["team"], body["touchpoint"], body["priority"]) == ("case.opened", case_id, "app", "mobile_app", "high")
    assert body["score"]["metric"] == "nps" and body["score"]["value"] == 2 and body["sentiment"]["label"] == "negative"
    assert body["journey_url"] == "https://cx.example.com/api/v1/journey/cust-2"
    assert body["verbatim"].startswith("The app <crashed>")
    tampered = dict(ticket.headers, **{"X-Touchpoint-Signature": "sha256=" + "0" * 64})
    with pytest.raises(Exception, match="does not match"):  # negative control: the check can fail
        verify_generic(ticket.body, tampered, SECRET, time.time(), 300)


async def test_retry_after_as_an_http_date_is_honoured(stage_for) -> None:
    async with WebhookInbox() as inbox:
        when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=3), usegmt=True)
        inbox.script("/tickets", (429, {"Retry-After": when}))
        await stage_for(inbox).process(messages(3, destinations=("tickets",)))
    first, second = inbox.at("/tickets")
    assert second.at - first.at >= 1.5  # an HTTP date 2-3 s ahead (whole seconds): waited, not retried at once


async def test_permanent_failure_is_dead_lettered_with_the_reason_and_recorded(stage_for, store: Store) -> None:
    async with WebhookInbox() as inbox:
        inbox.always("/slack", 410)
        result = await stage_for(inbox).process(messages(4))
    assert [hit.status for hit in inbox.at("/slack")] == [410]  # not retried
    [letter] = result.dead_letters
    assert letter["stage"] == "deliver" and letter["error_type"] == "DeliveryFailed"
    assert "'slack' answered 410" in letter["reason"] and "archived" in letter["reason"]
    assert letter["context"]["destination"] == "slack" and letter["payload"] == messages(4)[0].value
    assert letter["source_topic"] == "cx.actions"  # `touchpoint dlq replay` puts it back there
    rows = store.query("SELECT destination, status, attempts, http_status FROM {db}.deliveries FINAL ORDER BY destination")
    assert rows == [
        {"destination": "slack", "status": "failed", "attempts": 1, "http_status": 410},
        {"destination": "tickets", "status": "delivered", "attempts": 1, "http_status": 200},
    ]


async def test_gives_up_after_max_attempts_and_refuses_too_long_waits(stage_for) -> None:
    async with WebhookInbox() as inbox:
        inbox.always("/slack", 503)
        inbox.always("/tickets", 429, {"Retry-After": "3600"})
        result = await stage_for(inbox, delivery_max_attempts=3).process(messages(5))
    reasons = {letter["context"]["destination"]: letter["reason"] for letter in result.dead_letters}
    assert "gave up after 3 attempts" in reasons["slack"] and "last answer 503" in reasons["slack"]
    assert "asked to wait 3600s" in reasons["tickets"] and "MAX_RETRY_AFTER" in reasons["tickets"]
    assert len(inbox.at("/slack")) == 3 and len(inbox.at("/tickets")) == 1


async def test_redelivery_sends_nothing_twice_and_a_replay_retries_only_what_failed(stage_for, store: Store) -> None:
    async with WebhookInbox() as inbox:
        inbox.script("/tickets", (400, {}))
        stage = stage_for(inbox)
        batch = messages(6, 7)
        first = await stage.process(batch)
        assert len(first.dead_letters) == 1  # tickets refused the first case (400)
        again = await stage.process(batch)  # the same batch redelivered (or replayed from the dead letters)
    assert [r.new for r in again.recorded] == [False, False]
    assert len(inbox.at("/slack")) == 2  # once per case, never again
    assert len(inbox.at("/tickets")) == 3  # 400 + 200 for the first case (retried on replay), 200 for the second
    statuses = store.query("SELECT status, count() AS n FROM {db}.deliveries FINAL GROUP BY status")
    assert statuses == [{"status": "delivered", "n": 4}]


async def test_attached_signals_are_not_announced(stage_for) -> None:
    async with WebhookInbox() as inbox:
        same_customer = messages(8)
        record = signal(9, customer_id="cust-8", touchpoints=["mobile_app"], label="negative")
        follow_up = action_record(SignalFacts.from_record(record), Route("all", "app", "high", timedelta(days=1), ("slack",), "mobile_app"), "v1")
        result = await stage_for(inbox).process(same_customer + [Incoming(b"cust-8", CODEC.encode(follow_up), "cx.actions", 0, 9)])
    assert [r.disposition for r in result.recorded] == ["opened", "attached"]
    assert len(inbox.at("/slack")) == 1


async def test_a_destination_pace_spaces_requests(stage_for) -> None:
    async with WebhookInbox() as inbox:
        await stage_for(inbox, rate_per_minute=300).process(messages(10, 11, 12, 13, destinations=("slack",)))
    hits = inbox.at("/slack")
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:])]
    assert len(hits) == 4 and all(gap >= 0.15 for gap in gaps), gaps  # 300/min = 0.2 s apart (minus transit)


async def test_an_action_clickhouse_refuses_is_dead_lettered_and_the_rest_flows(stage_for, store: Store) -> None:
    good = messages(20)[0]
    broken = CODEC.decode(messages(21)[0].value)
    broken["sla_seconds"] = 2**40  # valid Avro (a long), but no due time ClickHouse can store
    bad = Incoming(b"cust-21", CODEC.encode(broken), "cx.actions", 0, 21)
    async with WebhookInbox() as inbox:
        result = await stage_for(inbox).process([bad, good])
    [letter] = result.dead_letters
    assert letter["stage"] == "store" and letter["payload"] == bad.value and "refused" in letter["reason"]
    assert [r.action["action_id"] for r in result.recorded] == [CODEC.decode(good.value)["action_id"]]
    assert len(inbox.at("/slack")) == 1  # the good case was still announced
