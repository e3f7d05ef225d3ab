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
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from touchpoint.connectors.delighted import sign_delighted
from touchpoint.connectors.intercom import sign_intercom
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.qualtrics import sign_qualtrics
from touchpoint.connectors.surveymonkey import sign_surveymonkey
from touchpoint.connectors.testing import LocalSource, read_topic
from touchpoint.connectors.webhooks import create_webhook_app
from touchpoint.core.identity import pseudonymize
from touchpoint.core.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
PAYLOADS = Path(__file__).parent / "connectors" / "payloads"
SECRETS = {
    "delighted_api_key": "dl-api-key", "surveymonkey_api_key": "sm-client-id", "surveymonkey_api_secret": "sm-secret",
    "surveymonkey_access_token": "sm-token", "intercom_client_secret": "ic-client-secret",
}  # fmt: skip


def served_pages(name: str) -> dict:
    """The pages a polling suite serves (each payload file's ``doc`` says where its shapes come from)."""
    return {page["key"]: page["body"] for page in json.loads((PAYLOADS / name).read_text())["pages"]}


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


# ---------------------------------------------------------------- SurveyMonkey

SM_SURVEY, SM_RESPONSE = "105723396", "5007154410"


def surveymonkey_event(event_type: str = "response_completed", response_id: str = SM_RESPONSE) -> bytes:
    # "Example Response Event Data", github.com/SurveyMonkey/public_api_docs includes/_webhooks.md
    return json.dumps({
        "name": "My Webhook", "filter_type": "collector", "filter_id": "50253586", "event_type": event_type,
        "event_id": "123456789", "object_type": "response", "object_id": response_id,
        "event_datetime": "2026-11-02T10:01:31.182613+00:00",
        "resources": {"respondent_id": response_id, "recipient_id": "0", "collector_id": "50253586",
                      "survey_id": SM_SURVEY, "user_id": "123456789"},
    }).encode()  # fmt: skip


def surveymonkey_api() -> LocalSource:
    """The SurveyMonkey API: the survey's details and the response's details (as the bulk pages serve them)."""
    pages = served_pages("surveymonkey_responses.json")
    response = next(r for r in pages[None]["data"] if r["id"] == SM_RESPONSE)
    detail = {**response, "logic_path": {}, "metadata": {}, "page_path": [], "current_page_id": "0"}  # details-only fields
    served = {f"/v3/surveys/{SM_SURVEY}/details": pages["details"],
              f"/v3/surveys/{SM_SURVEY}/responses/{SM_RESPONSE}/details": detail}  # fmt: skip
    return LocalSource(served, lambda request: request.path, require_headers={"Authorization": "Bearer sm-token"})


def sm_headers(body: bytes, key: str = "sm-client-id", secret: str = "sm-secret") -> dict:
    return {"Sm-Apikey": key, "Sm-Signature": sign_surveymonkey(body, key, secret)}


@pytest.fixture
async def surveymonkey(live_settings: Settings) -> AsyncIterator[tuple[Receiver, LocalSource]]:
    async with surveymonkey_api() as api:
        settings = live_settings.with_overrides(**SECRETS, surveymonkey_base_url=api.base_url, webhook_brand="acme")
        async for receiver in start_receiver(settings):
            yield receiver, api


async def test_tool_urls_answer_the_reachability_checks_tools_make(receiver: Receiver) -> None:
    """SurveyMonkey's subscription_url "must accept a HEAD request and return a 200"; Qualtrics' must answer GET."""
    for method in ("HEAD", "GET"):
        async with receiver.session.request(method, receiver.server.make_url("/webhooks/surveymonkey")) as answer:
            assert answer.status == 200
    async with receiver.session.head(receiver.server.make_url("/webhooks/nope")) as answer:
        assert answer.status == 404


async def test_surveymonkey_event_fetches_the_response_and_signatures_are_checked(surveymonkey) -> None:
    receiver, api = surveymonkey
    body = surveymonkey_event()
    assert (await receiver.post("surveymonkey", body, {**sm_headers(body), "Sm-Signature": "AAAA"}))[0] == 401
    assert (await receiver.post("surveymonkey", body, {}))[0] == 401
    assert (await receiver.post("surveymonkey", body, sm_headers(body, secret="wrong")))[0] == 401
    assert (await receiver.post("surveymonkey", body, sm_headers(body, key="someone-else")))[0] == 401
    assert api.hits == [], "no API call before the signature is checked"
    status, answer, _ = await receiver.post("surveymonkey", body, sm_headers(body))
    assert status == 200, answer

    record = (await receiver.raw())[SM_RESPONSE]
    assert record["score"] == {"metric": "nps", "value": 2.0, "scale_min": 0, "scale_max": 10}  # 0-10 matrix rating
    assert record["attributes"]["score.319352787"] == "rating 1 (1-5)"  # the star rating, kept
    assert record["text"] == "The courier left the parcel in the rain."  # the essay; never the first name
    assert record["customer_id"] == pseudonymize("email", "dana.whitfield@example.org", receiver.settings.customer_id_secret)
    assert record["attributes"]["order_id"] == "A-1001"
    assert "Laura" not in json.dumps(record, default=str)


async def test_surveymonkey_api_down_is_503_and_the_retry_lands(surveymonkey) -> None:
    receiver, api = surveymonkey
    body = surveymonkey_event()
    api.fail(f"/v3/surveys/{SM_SURVEY}/details", 500, times=2)  # both attempts of one delivery fail
    status, answer, headers = await receiver.post("surveymonkey", body, sm_headers(body))
    assert status == 503 and int(headers["Retry-After"]) >= 1, answer
    assert SM_RESPONSE not in await receiver.raw()
    status, answer, _ = await receiver.post("surveymonkey", body, sm_headers(body))  # SurveyMonkey retries
    assert status == 200, answer
    assert SM_RESPONSE in await receiver.raw()


async def test_surveymonkey_unknown_response_is_dead_lettered_and_other_events_ignored(surveymonkey) -> None:
    receiver, api = surveymonkey
    missing = surveymonkey_event(response_id="999")
    status, answer, _ = await receiver.post("surveymonkey", missing, sm_headers(missing))
    assert status == 422 and "no such response" in answer["error"]
    [(_, letter)] = await read_topic(receiver.settings, receiver.settings.topic_dead_letter, "dead_letter")
    assert letter["payload"] == missing and letter["origin"] == "tool:surveymonkey"
    updated = surveymonkey_event("response_updated")
    hits = len(api.hits)
    status, answer, _ = await receiver.post("surveymonkey", updated, sm_headers(updated))
    assert status == 200 and "ignored" in answer and len(api.hits) == hits


# ---------------------------------------------------------------- Intercom


def intercom_notification(topic: str = "conversation.user.replied") -> bytes:
    # Intercom's notification object around conversation 101 (tests/fixtures/webhooks/SOURCES.md)
    notification = json.loads((FIXTURES / "intercom_conversation_user_replied.json").read_text())
    return json.dumps({**notification, "topic": topic}).encode()


def ic_headers(body: bytes, secret: str = "ic-client-secret") -> dict:
    return {"X-Hub-Signature": sign_intercom(body, secret)}


async def test_intercom_signature_is_checked_and_the_notified_conversation_lands(receiver: Receiver) -> None:
    body = intercom_notification()
    assert (await receiver.post("intercom", body, {"X-Hub-Signature": "sha1=" + "0" * 40}))[0] == 401
    assert (await receiver.post("intercom", body, {}))[0] == 401
    assert (await receiver.post("intercom", body, ic_headers(body, "other-secret")))[0] == 401
    status, answer, _ = await receiver.post("intercom", body, ic_headers(body))
    assert status == 200, answer
    record = (await receiver.raw())["101"]
    # no access token configured: the conversation as notified (the opener and the reply that triggered it)
    assert record["text"] == "My order A-1001 never arrived.\nIt has been two weeks. Please refund."
    assert record["channel"] == "chat" and record["score"] is None
    assert record["customer_id"] == pseudonymize("email", "dana.whitfield@example.org", receiver.settings.customer_id_secret)
    status, answer, _ = await receiver.post("intercom", ping := intercom_notification("ping"), ic_headers(ping))
    assert status == 200 and "ignored" in answer


async def test_intercom_with_a_token_fetches_the_whole_conversation(live_settings: Settings) -> None:
    pages = served_pages("intercom_conversations.json")
    api = LocalSource({"/conversations/101": pages["/conversations/101"]}, lambda request: request.path,
                      require_headers={"Authorization": "Bearer ic-token", "Intercom-Version": "2.11"})  # fmt: skip
    async with api:
        settings = live_settings.with_overrides(**SECRETS, intercom_access_token="ic-token", intercom_base_url=api.base_url)
        async for receiver in start_receiver(settings):
            body = intercom_notification("conversation.rating.added")
            status, answer, _ = await receiver.post("intercom", body, ic_headers(body))
            assert status == 200, answer
            record = (await receiver.raw())["101"]
    assert [hit.key for hit in api.hits] == ["/conversations/101"]
    assert record["score"] == {"metric": "csat", "value": 2.0, "scale_min": 1, "scale_max": 5}  # the conversation rating
    assert record["text"] == "My order A-1001 never arrived.\nIt has been two weeks. Please refund.\nSlow to answer."
    assert "Internal" not in record["text"] and "Checking now" not in record["text"]  # notes and teammates' turns never


# ---------------------------------------------------------------- Qualtrics

QX_SURVEY, QX_RESPONSE = "SV_3gbwq8aJgqPwQDP", "R_1l9mcVuXubb4aGm"
QX_TOPIC = f"sapdevelopment.surveyengine.completedResponse.{QX_SURVEY}"


def qualtrics_event(shared_key: str | None = "qx-shared", topic: str = QX_TOPIC, response_id: str = QX_RESPONSE) -> bytes:
    """Qualtrics' event-subscription POST: a form with Topic, MSG (JSON) and, with a sharedKey, HMAC.

    Shape of a real delivery as printed in kyma-incubator/connector-tools qualtrics-event-gw/README.md and
    community.qualtrics.com "HMAC signatures for webhook subscriptions" (HMAC = hex HMAC-SHA512 of MSG).
    """
    msg = json.dumps({"Status": "Complete", "SurveyID": QX_SURVEY, "ResponseID": response_id,
                      "CompletedDate": "2026-11-02 10:15:02", "BrandID": "sapdevelopment"})  # fmt: skip
    fields = {"Topic": topic, "MSG": msg}
    if shared_key:
        fields["HMAC"] = sign_qualtrics(msg, shared_key)
    return urlencode(fields).encode()


def qualtrics_api() -> LocalSource:
    """The Responses API: GET /API/v3/surveys/{surveyId}/responses/{responseId} -> {"result": response, "meta"}."""
    export = served_pages("qualtrics_export.json")["875aa28c-4d86-4a2b-b888-3d958396b8f6/file"]
    response = next(r for r in export["responses"] if r.get("responseId") == QX_RESPONSE)
    answer = {"result": response, "meta": {"requestId": "4c3e2f1a-0000-4000-8000-00000000000a", "httpStatus": "200 - OK"}}
    return LocalSource({f"/API/v3/surveys/{QX_SURVEY}/responses/{QX_RESPONSE}": answer}, lambda request: request.path,
                       require_headers={"X-API-TOKEN": "qx-token"})  # fmt: skip


async def qualtrics_receiver(live_settings: Settings, api: LocalSource, **extra) -> AsyncIterator[Receiver]:
    settings = live_settings.with_overrides(
        qualtrics_base_url=api.base_url, qualtrics_api_token="qx-token", webhook_brand="acme", **extra
    )  # fmt: skip
    async for receiver in start_receiver(settings):
        yield receiver


FORM = "application/x-www-form-urlencoded"
QX_QUERY = "?csat=QID3&comment=QID2"  # the publicationUrl says which question is CSAT and which is the comment


async def test_qualtrics_event_with_a_shared_key_is_verified_then_fetched(live_settings: Settings) -> None:
    async with qualtrics_api() as api:
        async for receiver in qualtrics_receiver(live_settings, api, qualtrics_shared_key="qx-shared"):
            assert (await receiver.post("qualtrics", qualtrics_event("wrong-key"), {}, FORM, QX_QUERY))[0] == 401
            assert (await receiver.post("qualtrics", qualtrics_event(None), {}, FORM, QX_QUERY))[0] == 401
            tampered = qualtrics_event().replace(QX_RESPONSE.encode(), b"R_2aB7kPq9XyZ1cD3", 1)
            assert (await receiver.post("qualtrics", tampered, {}, FORM, QX_QUERY))[0] == 401
            assert api.hits == [], "nothing is fetched for an event that fails its HMAC"
            status, answer, _ = await receiver.post("qualtrics", qualtrics_event(), {}, FORM, QX_QUERY)
            assert status == 200, answer
            record = (await receiver.raw())[QX_RESPONSE]
    assert record["score"] == {"metric": "nps", "value": 3.0, "scale_min": 0, "scale_max": 10}  # QID1 has an _NPS_GROUP
    assert record["attributes"]["score.QID3"] == "csat 2"
    assert record["text"] == "The checkout kept rejecting my card."
    assert record["touchpoint_hint"] == "payment" and record["attributes"]["distribution_channel"] == "email"
    assert record["customer_id"] == pseudonymize("email", "dana.whitfield@example.org", receiver.settings.customer_id_secret)
    dumped = json.dumps(record, default=str)
    assert "Whitfield" not in dumped and "198.51.100.23" not in dumped and "51.5074" not in dumped


async def test_qualtrics_without_a_shared_key_accepts_unsigned_events_and_reads_forms_only(live_settings: Settings) -> None:
    async with qualtrics_api() as api:
        async for receiver in qualtrics_receiver(live_settings, api):
            status, answer, _ = await receiver.post("qualtrics", qualtrics_event(None), {}, FORM, QX_QUERY)
            assert status == 200, answer
            other = qualtrics_event(None, topic="sapdevelopment.surveyengine.partialResponse.SV_x")
            status, answer, _ = await receiver.post("qualtrics", other, {}, FORM)
            assert status == 200 and "ignored" in answer
            status, answer, _ = await receiver.post("qualtrics", b'{"Topic": "json, not a form"}', {})
            assert status == 400 and answer["dead_lettered"]
            status, answer, _ = await receiver.post("qualtrics", urlencode({"Topic": QX_TOPIC, "MSG": "{oops"}).encode(), {}, FORM)
            assert status == 400 and "MSG is not JSON" in answer["error"]
            unknown = qualtrics_event(None, response_id="R_unknown")
            status, answer, _ = await receiver.post("qualtrics", unknown, {}, FORM)
            assert status == 422 and "no such response" in answer["error"]
