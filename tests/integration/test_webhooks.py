"""The survey webhook receiver on a real aiohttp server, producing to the real broker (Tansu)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.surveys import sign_generic, sign_standard, sign_typeform
from touchpoint.connectors.testing import read_topic
from touchpoint.connectors.webhooks import create_webhook_app
from touchpoint.core.broker import EmbeddedBroker
from touchpoint.core.identity import is_pseudonymous, pseudonymize
from touchpoint.core.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
TYPEFORM_SECRET = "tf-secret"
FORMBRICKS_SECRET = "whsec_" + base64.b64encode(b"formbricks-signing-key").decode()
GENERIC_SECRET = "generic-secret"


def receiver_settings(settings: Settings, **extra) -> Settings:
    base = dict(
        typeform_webhook_secret=TYPEFORM_SECRET, formbricks_webhook_secret=FORMBRICKS_SECRET,
        generic_webhook_secret=GENERIC_SECRET, webhook_brand="acme", webhook_max_body_bytes=4096,
        webhook_ack_timeout_s=5.0,
    )  # fmt: skip
    return settings.with_overrides(**{**base, **extra})


class Client:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session

    async def post(self, tool: str, body: bytes, headers: dict, query: str = "") -> tuple[int, dict]:
        url = self.server.make_url(f"/webhooks/{tool}{query}")
        async with self.session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def client(live_settings: Settings) -> AsyncIterator[Client]:
    settings = receiver_settings(live_settings)
    async with SignalProducer(settings) as producer:
        server = TestServer(create_webhook_app(settings, producer), host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession() as session:
            yield Client(server, session)
        await server.close()


def typeform_request() -> tuple[bytes, dict]:
    body = (FIXTURES / "typeform_form_response.json").read_bytes()
    return body, {"Typeform-Signature": sign_typeform(body, TYPEFORM_SECRET)}


def formbricks_request(stamp: int | None = None) -> tuple[bytes, dict]:
    body = (FIXTURES / "formbricks_response_finished.json").read_bytes()
    stamp_s = str(stamp or int(time.time()))
    return body, {"webhook-id": "msg_42", "webhook-timestamp": stamp_s,
                  "webhook-signature": sign_standard("msg_42", stamp_s, body, FORMBRICKS_SECRET)}  # fmt: skip


def generic_request(body: bytes, stamp: int | None = None) -> dict:
    stamp_s = str(stamp or int(time.time()))
    return {"X-Touchpoint-Timestamp": stamp_s, "X-Touchpoint-Signature": sign_generic(stamp_s, body, GENERIC_SECRET)}


async def test_each_tool_is_accepted_and_lands_in_the_raw_topic(client: Client, live_settings: Settings) -> None:
    status, typeform = await client.post("typeform", *typeform_request())
    assert status == 200, typeform
    status, formbricks = await client.post("formbricks", *formbricks_request(), query="?csat=csat&comment=whyscore")
    assert status == 200, formbricks
    body = (FIXTURES / "generic_ces.json").read_bytes()
    status, generic = await client.post("generic", body, generic_request(body))
    assert status == 200, generic

    records = {r["signal_id"]: (key, r) for key, r in await read_topic(live_settings, live_settings.topic_raw, "raw_signal")}
    key, record = records[typeform["signal_id"]]
    assert record["source"] == "typeform" and record["brand"] == "acme"
    assert record["score"] == {"metric": "nps", "value": 3.0, "scale_min": 0, "scale_max": 10}
    assert record["customer_id"] == pseudonymize("email", "ann.smith@example.com", live_settings.customer_id_secret)
    assert key == record["customer_id"].encode()
    _, record = records[formbricks["signal_id"]]
    assert (record["score"]["metric"], record["score"]["value"]) == ("csat", 4.0)
    _, record = records[generic["signal_id"]]
    assert (record["score"]["metric"], record["score"]["value"]) == ("ces", 6.0)
    for key, record in records.values():
        assert is_pseudonymous(record["customer_id"]) and b"@" not in key
        assert "example.com" not in json.dumps(record, default=str).replace("shop.example.com", "")


async def test_signatures_are_enforced(client: Client) -> None:
    body, headers = typeform_request()
    assert (await client.post("typeform", body, {"Typeform-Signature": "sha256=AAAA"}))[0] == 401
    assert (await client.post("typeform", body, {}))[0] == 401
    assert (await client.post("typeform", body.replace(b"3,", b"9,"), headers))[0] == 401  # body changed after signing
    stale_body, stale_headers = formbricks_request(stamp=int(time.time()) - 3600)
    status, answer = await client.post("formbricks", stale_body, stale_headers)
    assert status == 401 and "tolerance" in answer["error"]
    generic = b'{"id": "x"}'
    assert (await client.post("generic", generic, generic_request(generic, stamp=int(time.time()) + 900)))[0] == 401


async def test_unconfigured_tool_is_refused_naming_the_setting(live_settings: Settings) -> None:
    async with SignalProducer(live_settings) as producer:
        async with TestServer(create_webhook_app(live_settings, producer), host="127.0.0.1") as server:
            async with aiohttp.ClientSession() as session:
                client = Client(server, session)
                status, answer = await client.post("typeform", *typeform_request())
    assert status == 401 and "TOUCHPOINT_TYPEFORM_WEBHOOK_SECRET" in answer["error"]


async def test_oversize_body_is_413(client: Client) -> None:
    body = json.dumps({"id": "big", "comment": "x" * 5000}).encode()
    status, _ = await client.post("generic", body, generic_request(body))
    assert status == 413


async def test_bad_payloads_are_dead_lettered_with_their_reason(client: Client, live_settings: Settings) -> None:
    malformed = b'{"id": "resp-1", "nps": '
    status, answer = await client.post("generic", malformed, generic_request(malformed))
    assert status == 400 and answer["dead_lettered"]
    invalid = json.dumps({"id": "resp-2", "occurred_at": "2026-11-02T10:00:00Z", "nps": 14}).encode()
    status, answer = await client.post("generic", invalid, generic_request(invalid))
    assert status == 422 and "outside its scale" in answer["error"]
    unfinished = json.loads((FIXTURES / "formbricks_response_finished.json").read_text())
    unfinished["event"] = "responseCreated"
    body = json.dumps(unfinished).encode()
    stamp = str(int(time.time()))
    headers = {"webhook-id": "m", "webhook-timestamp": stamp, "webhook-signature": sign_standard("m", stamp, body, FORMBRICKS_SECRET)}
    status, answer = await client.post("formbricks", body, headers)
    assert status == 200 and "ignored" in answer

    letters = {r["stage"]: r for _, r in await read_topic(live_settings, live_settings.topic_dead_letter, "dead_letter")}
    assert letters["connector.parse"]["payload"] == malformed and "not JSON" in letters["connector.parse"]["reason"]
    assert letters["connector.validate"]["payload"] == invalid
    assert letters["connector.validate"]["origin"] == "tool:generic"


async def test_broker_down_answers_503_and_the_retry_lands(settings: Settings, tmp_path: Path) -> None:
    """No 2xx without Kafka's ack: with the broker gone the sender gets 503 and retries later."""
    broker = EmbeddedBroker(log_file=tmp_path / "tansu.log")
    broker.start()
    try:
        live = receiver_settings(settings, kafka_bootstrap=broker.bootstrap, webhook_ack_timeout_s=1.0)
        async with SignalProducer(live) as producer:
            async with TestServer(create_webhook_app(live, producer), host="127.0.0.1") as server:
                async with aiohttp.ClientSession() as session:
                    client = Client(server, session)
                    body = (FIXTURES / "generic_ces.json").read_bytes()
                    assert (await client.post("generic", body, generic_request(body)))[0] == 200
                    broker.stop()
                    status, answer = await client.post("generic", body, generic_request(body))
                    assert status == 503 and "Kafka did not acknowledge" in answer["error"]
                    broker.start()  # the same port: the producer reconnects
                    await asyncio.sleep(0.5)
                    status, answer = await client.post("generic", body, generic_request(body))
                    assert status == 200, answer
    finally:
        broker.stop()
