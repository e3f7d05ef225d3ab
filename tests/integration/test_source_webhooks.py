"""SurveyMonkey, Qualtrics, Delighted and Intercom webhooks on a real aiohttp server, to the real broker.

Each tool's signature is checked as the tool documents it (good: 200; bad or
missing: 401); tools whose events carry ids fetch the response from a real
local HTTP server standing for the tool's API. Fixture sources:
tests/fixtures/webhooks/SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from touchpoint.connectors.delighted import sign_delighted
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.testing import read_topic
from touchpoint.connectors.webhooks import create_webhook_app
from touchpoint.core.identity import pseudonymize
from touchpoint.core.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
SECRETS = {"delighted_api_key": "dl-api-key"}


class Receiver:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.server, self.session, self.settings = server, session, settings

    async def post(
        self, tool: str, body: bytes, headers: dict, content_type: str = "application/json", query: str = ""
    ) -> tuple[int, dict, dict]:
        url = self.server.make_url(f"/webhooks/{tool}{query}")
        async with self.session.post(url, data=body, headers={"Content-Type": content_type, **headers}) as resp:
            return resp.status, await resp.json(content_type=None), dict(resp.headers)

    async def raw(self) -> dict[str, dict]:
        return {r["source_id"]: r for _, r in await read_topic(self.settings, self.settings.topic_raw, "raw_signal")}


async def start_receiver(settings: Settings) -> AsyncIterator[Receiver]:
    async with SignalProducer(settings) as producer:
        async with TestServer(create_webhook_app(settings, producer), host="127.0.0.1") as server:
            async with aiohttp.ClientSession() as session:
                yield Receiver(server, session, settings)


@pytest.fixture
async def receiver(live_settings: Settings) -> AsyncIterator[Receiver]:
    settings = live_settings.with_overrides(**SECRETS, webhook_brand="acme", webhook_ack_timeout_s=5.0)
    async for receiver in start_receiver(settings):
        yield receiver


# ---------------------------------------------------------------- Delighted


async def test_delighted_signed_response_lands_and_bad_or_missing_signature_is_401(receiver: Receiver) -> None:
    body = (FIXTURES / "delighted_survey_response_updated.json").read_bytes()  # docs' example (SOURCES.md)
    good = {"X-Delighted-Webhook-Signature": sign_delighted(body, SECRETS["delighted_api_key"])}
    assert (await receiver.post("delighted", body, {"X-Delighted-Webhook-Signature": "sha256=" + "0" * 64}))[0] == 401
    assert (await receiver.post("delighted", body, {}))[0] == 401
    assert (await receiver.post("delighted", body.replace(b'"score": 9', b'"score": 10'), good))[0] == 401
    assert (await receiver.post("delighted", body, {"X-Delighted-Webhook-Signature": sign_delighted(body, "other")}))[0] == 401
    status, answer, _ = await receiver.post("delighted", body, good)
    assert status == 200, answer

    record = (await receiver.raw())["5435"]
    assert record["score"] == {"metric": "nps", "value": 9.0, "scale_min": 0, "scale_max": 10}
    assert record["text"] == "Your service is fast and flawless!"
    assert record["customer_id"] == pseudonymize("email", "charlie_gravis@example.com", receiver.settings.customer_id_secret)
    assert record["occurred_at"].timestamp() == 1732186844  # created_at, Unix seconds
    assert "Charlie" not in json.dumps(record, default=str)


async def test_delighted_unsubscribe_is_ignored(receiver: Receiver) -> None:
    body = json.dumps({"event_type": "unsubscribe.created", "event_id": "e1", "event_data": {"person": {"id": "1"}}}).encode()
    status, answer, _ = await receiver.post("delighted", body, {"X-Delighted-Webhook-Signature": sign_delighted(body, SECRETS["delighted_api_key"])})
    assert status == 200 and "ignored" in answer
