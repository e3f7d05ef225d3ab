"""Closing the loop on the real stack: Tansu broker -> Faust worker (real models) -> route agent ->
cx.actions -> case agent -> chdb cases -> a real local HTTP destination; the lifecycle through the
worker's own API; a restarted worker knows the open cases from ClickHouse.

Signals are survey responses as a connector produces them (schemas/signal.py RawSignal); the texts are
written for this test, and a touchpoint hint (what a survey question carries) fixes the primary touchpoint.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import faust

from tests.polling import wait_for
from tests.webhook_inbox import WebhookInbox
from touchpoint.connectors.producer import SignalProducer
from touchpoint.core.broker import free_port
from touchpoint.core.settings import Settings
from touchpoint.pipeline.runtime import running_worker
from touchpoint.schemas.signal import RawSignal, Score

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
RULES = """
mode: all_match
destinations:
  app-slack: {{type: slack, url: "{url}"}}
rules:
  - name: app-detractors
    when: {{touchpoint: mobile_app, nps: detractor}}
    team: mobile-app
    priority: high
    sla: 1d
    destinations: [app-slack]
  - name: repeat-complaint
    when: {{open_case: true, keywords: [again]}}
    team: escalations
    priority: urgent
    sla: 4h
    destinations: [app-slack]
"""


def survey(source_id: str, customer: str, text: str, nps: int) -> RawSignal:
    return RawSignal(
        source="typeform", source_id=source_id, channel="survey", brand="acme", occurred_at=WHEN, text=text,
        score=Score("nps", nps, 0, 10), customer_id=customer, touchpoint_hint="mobile_app",
    )  # fmt: skip


S1 = survey("r1", "c-1", "The app crashes every time I open my basket.", 2)
S2 = survey("r2", "c-1", "Still cannot log in to the app after the update.", 3)
S3 = survey("r3", "c-2", "The app froze during checkout and I lost my order.", 1)
HAPPY = survey("r4", "c-4", "Love the new app design, so quick!", 10)
S4 = survey("r5", "c-1", "The app crashed again, third time this week.", 0)
S5 = survey("r6", "c-1", "App login broken once more after yesterday's fix.", 2)
S6 = survey("r7", "c-2", "The app is still freezing on the payment screen.", 2)
S7 = survey("r8", "c-5", "The app logs me out every few minutes.", 1)


async def produce(settings: Settings, *signals: RawSignal) -> None:
    async with SignalProducer(settings) as producer:
        await asyncio.gather(*[await producer.send(s) for s in signals])


async def handled(app: faust.App, at_least: int) -> bool:
    return app.touchpoint["actions"].handled >= at_least


class Api:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + path) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, body: dict) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body) as response:
            return response.status, await response.json()

    async def cases(self, **query: str) -> list[dict]:
        return (await self.get("/api/v1/cases?" + "&".join(f"{k}={v}" for k, v in query.items())))["cases"]


async def test_route_attach_deliver_redeliver_lifecycle_and_restart(live_settings: Settings, enricher, tmp_path: Path) -> None:
    async with WebhookInbox() as inbox, aiohttp.ClientSession() as http:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES.format(url=inbox.url("/slack")))
        port = free_port()
        settings = live_settings.with_overrides(
            routing_rules_path=str(rules), topic_actions=live_settings.topic_raw.replace("signals.raw", "cx.actions"),
            web_enabled=True, web_port=port, api_public_url=f"http://127.0.0.1:{port}",
            route_batch_window_s=0.2, actions_batch_window_s=0.2, delivery_retry_initial_s=0.05,
            routing_reload_interval_s=0.2,
        )  # fmt: skip
        api = Api(f"http://127.0.0.1:{port}", http)
        async with running_worker(settings, enricher) as app:
            first_version = app.touchpoint["rules"].rules.version
            # 1. two detractors of one customer about the app: one case; another customer: a second case
            await produce(settings, S1, S2, S3, HAPPY)
            await wait_for(lambda: handled(app, 3), timeout_s=120)
            cases = {c["customer_id"]: c for c in await api.cases(team="mobile-app")}
            assert set(cases) == {"c-1", "c-2"}
            assert (cases["c-1"]["signals"], cases["c-2"]["signals"]) == (2, 1)
            assert all(c["status"] == "open" and c["priority"] == "high" and c["touchpoint"] == "mobile_app" for c in cases.values())
            assert len(inbox.at("/slack")) == 2  # one announcement per case, none for the attached signal
            assert "/api/v1/journey/c-1" in str(inbox.at("/slack")) or "/api/v1/journey/c-2" in str(inbox.at("/slack"))

            # 2. the same signals again (a re-import): nothing new anywhere
            await produce(settings, S1, S2, S3)
            await wait_for(lambda: handled(app, 6), timeout_s=120)
            assert {c["case_id"] for c in await api.cases()} == {c["case_id"] for c in cases.values()}
            assert len(inbox.at("/slack")) == 2

            # 3. a rule that asks whether the customer has an open case (read from ClickHouse)
            await produce(settings, S4)
            await wait_for(lambda: handled(app, 8), timeout_s=120)
            [escalation] = await api.cases(team="escalations")
            assert escalation["customer_id"] == "c-1" and escalation["priority"] == "urgent"
            assert (await api.cases(team="mobile-app", customer_id="c-1"))[0]["signals"] == 3

            # 4. the lifecycle through the API
            c1, c2 = cases["c-1"]["case_id"], cases["c-2"]["case_id"]
            status, body = await api.post(f"/api/v1/cases/{c2}/acknowledge", {"by": "ana"})
            assert status == 200 and body["case"]["status"] == "acknowledged" and body["case"]["owner"] == "ana"
            status, body = await api.post(f"/api/v1/cases/{c1}/close", {"by": "bo"})
            assert status == 400 and body["parameter"] == "note"
            status, body = await api.post(f"/api/v1/cases/{c1}/close", {"by": "bo", "note": "Fixed in 5.2, called back"})
            assert status == 200 and body["case"]["status"] == "closed" and body["changed"] is True
            status, body = await api.post(f"/api/v1/cases/{c1}/acknowledge", {"by": "ana"})
            assert status == 409 and "is closed" in body["error"]
            assert (await api.post("/api/v1/cases/nope/close", {"by": "bo", "note": "x"}))[0] == 404

            # 5. a redelivered signal never reopens the closed case; new feedback opens a new one
            await produce(settings, S1)
            await wait_for(lambda: handled(app, 9), timeout_s=120)
            assert (await api.get(f"/api/v1/cases/{c1}"))["case"]["status"] == "closed"
            await produce(settings, S5)
            await wait_for(lambda: handled(app, 10), timeout_s=120)
            open_c1 = await api.cases(team="mobile-app", customer_id="c-1", status="open")
            assert len(open_c1) == 1 and open_c1[0]["case_id"] != c1
            assert len(inbox.at("/slack")) == 4  # + the escalation, + the new case

            detail = (await api.get(f"/api/v1/cases/{c1}"))["case"]
            assert [h["status"] for h in detail["history"]] == ["open", "closed"]
            assert [d["status"] for d in detail["deliveries"]] == ["delivered"]
            loop = await api.get("/api/v1/loop")
            [total] = loop["total"]
            assert total["n"] == 4 and total["closed"] == 1 and total["open"] == 3
            assert {(r["team"], r["priority"]) for r in loop["open_now"]} == {("mobile-app", "high"), ("escalations", "urgent")}

        # 6. a new worker (a restart, or another replica after a rebalance) knows the open cases
        async with running_worker(settings, enricher) as app:
            await produce(settings, S6)
            await wait_for(lambda: handled(app, 1), timeout_s=120)
            [c2_now] = await api.cases(customer_id="c-2")
            assert c2_now["case_id"] == c2 and c2_now["signals"] == 2 and c2_now["status"] == "acknowledged"
            assert len(inbox.at("/slack")) == 4

            # 7. the CX lead edits the rules: the running worker uses them from the next batch, no restart
            rules.write_text(RULES.format(url=inbox.url("/slack")).replace("team: mobile-app", "team: app-squad"))
            os.utime(rules, (1, 1))  # a new stamp even within the file system's time resolution
            await asyncio.sleep(0.5)
            await produce(settings, S7)
            await wait_for(lambda: handled(app, 2), timeout_s=120)
            [moved] = await api.cases(customer_id="c-5")
            assert moved["team"] == "app-squad" and app.touchpoint["rules"].rules.version != first_version
