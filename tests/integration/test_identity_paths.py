"""One person, one customer_id, whichever way their words arrive, and no clear text anywhere.

The same email and the same phone number, spelled differently per path, go
through every way in: the three survey webhooks (on a real HTTP server),
CSV and JSONL imports, a Zendesk conversation export, and a real polling
connector (Delighted, against a local server). The real broker carries them, the real worker
stores them in chdb, then every topic (keys and values) and every stored
column is searched for the clear-text identifiers.
"""

from __future__ import annotations

import base64
import csv
import json
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from tests.polling import wait_for
from touchpoint.connectors.config import ConnectorConfig, build_connector
from touchpoint.connectors.files import import_file
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.surveys import sign_generic, sign_standard, sign_typeform
from touchpoint.connectors.testing import LocalSource, query_key, read_topic, run_pass
from touchpoint.connectors.webhooks import create_webhook_app
from touchpoint.core.identity import Identity
from touchpoint.core.kafka import read_topic_records
from touchpoint.core.settings import Settings
from touchpoint.pipeline.runtime import running_worker

EMAIL = "Dana.Whitfield@Example.org"
EMAIL_SPELLINGS = ("Dana.Whitfield@Example.org", " dana.whitfield@example.org", "DANA.WHITFIELD@EXAMPLE.ORG")
PHONE_E164 = "+14155550132"
PHONE_SPELLINGS = ("(415) 555-0132", "+1 415 555 0132", "415.555.0132", "+14155550132")
SECRETS = {"typeform_webhook_secret": "tf", "generic_webhook_secret": "gen",
           "formbricks_webhook_secret": "whsec_Zm9ybWJyaWNrcy1zaWduaW5nLWtleQ=="}  # fmt: skip
WHEN = "2026-11-02T10:15:00Z"


def typeform(token: str, hidden: dict) -> bytes:
    # Shape of Typeform's form_response webhook (developer.typeform.com/webhooks/example-payload)
    return json.dumps({"event_id": f"ev-{token}", "event_type": "form_response", "form_response": {
        "form_id": "f1", "token": token, "submitted_at": WHEN, "hidden": hidden,
        "definition": {"id": "f1", "title": "Post-delivery", "fields": [{"id": "q1", "ref": "nps_q", "type": "nps"}]},
        "answers": [{"type": "number", "number": 8, "field": {"id": "q1", "type": "nps", "ref": "nps_q"}}]}}).encode()  # fmt: skip


def formbricks(response_id: str, attributes: dict) -> bytes:
    # Shape of Formbricks' responseFinished webhook (formbricks.com/docs, "Webhooks")
    return json.dumps({"webhookId": "wh1", "event": "responseFinished", "data": {
        "id": response_id, "createdAt": WHEN, "updatedAt": WHEN, "surveyId": "s1", "finished": True,
        "data": {"csat": 4, "why": "Quick checkout."}, "contactAttributes": attributes}}).encode()  # fmt: skip


def generic(response_id: str, customer: dict) -> bytes:
    return json.dumps({"id": response_id, "occurred_at": WHEN, "nps": 9, "comment": "Fine.", "customer": customer}).encode()


async def post_webhooks(settings: Settings) -> None:
    requests = [
        ("typeform", typeform("tf-email", {"user_email": EMAIL_SPELLINGS[0]}), ""),
        ("typeform", typeform("tf-phone", {"phone": PHONE_SPELLINGS[0]}), ""),
        ("formbricks", formbricks("fb-email", {"email": EMAIL_SPELLINGS[1]}), "?csat=csat&comment=why"),
        ("formbricks", formbricks("fb-phone", {"phone_number": PHONE_SPELLINGS[1]}), "?csat=csat&comment=why"),
        ("generic", generic("gen-email", {"email": EMAIL_SPELLINGS[2]}), ""),
        ("generic", generic("gen-phone", {"phone": PHONE_SPELLINGS[2]}), ""),
    ]
    async with SignalProducer(settings) as producer:
        async with TestServer(create_webhook_app(settings, producer), host="127.0.0.1") as server:
            async with aiohttp.ClientSession() as session:
                for tool, body, query in requests:
                    stamp = str(int(time.time()))
                    headers = {
                        "typeform": {"Typeform-Signature": sign_typeform(body, SECRETS["typeform_webhook_secret"])},
                        "formbricks": {"webhook-id": "m1", "webhook-timestamp": stamp,
                                       "webhook-signature": sign_standard("m1", stamp, body, SECRETS["formbricks_webhook_secret"])},
                        "generic": {"X-Touchpoint-Timestamp": stamp,
                                    "X-Touchpoint-Signature": sign_generic(stamp, body, SECRETS["generic_webhook_secret"])},
                    }[tool]  # fmt: skip
                    async with session.post(server.make_url(f"/webhooks/{tool}{query}"), data=body, headers=headers) as answer:
                        assert answer.status == 200, (tool, await answer.text())


def write_files(folder: Path) -> list[tuple[Path, str]]:
    csv_path = folder / "survey_export.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "occurred_at", "nps", "text", "user_email", "phone"])
        writer.writerow(["csv-email", WHEN, "6", "Slow refund.", EMAIL_SPELLINGS[1], ""])
        writer.writerow(["csv-phone", WHEN, "7", "Okay.", "", PHONE_SPELLINGS[3]])
    jsonl_path = folder / "export.jsonl"
    jsonl_path.write_text(
        json.dumps({"id": "jl-email", "occurred_at": WHEN, "csat": 2, "customer": {"email": EMAIL_SPELLINGS[2]}}) + "\n"
        + json.dumps({"id": "jl-phone", "occurred_at": WHEN, "csat": 5, "mobile": PHONE_SPELLINGS[0]}) + "\n"
    )  # fmt: skip
    zendesk_path = folder / "tickets.json"  # Zendesk Incremental Ticket Export with side-loaded users
    zendesk_path.write_text(json.dumps({"tickets": [
        {"id": 901, "created_at": WHEN, "requester_id": 11, "status": "solved",
         "comments": [{"author_id": 11, "public": True, "plain_body": "Where is my refund?"}]},
        {"id": 902, "created_at": WHEN, "requester_id": 12, "status": "solved",
         "comments": [{"author_id": 12, "public": True, "plain_body": "Thanks for the help."}]},
    ], "users": [{"id": 11, "email": EMAIL_SPELLINGS[0]}, {"id": 12, "phone": PHONE_SPELLINGS[1]}]}))  # fmt: skip
    return [(csv_path, "csv"), (jsonl_path, "jsonl"), (zendesk_path, "zendesk")]


def delighted_response(response_id: str, person: dict, created: int) -> dict:
    # A listed Delighted survey response with the person expanded (app.delighted.com/docs/api/listing-survey-responses)
    return {"id": response_id, "person": {"id": f"p{response_id}", "name": "Dana Whitfield", "created_at": created, **person},
            "survey_type": "nps", "score": 4, "comment": "Late again.", "permalink": None, "created_at": created,
            "updated_at": created, "person_properties": None, "notes": [], "tags": [], "additional_answers": []}  # fmt: skip


async def poll_delighted(settings: Settings, monkeypatch) -> None:
    pages = {"1": [delighted_response("7001", {"email": EMAIL_SPELLINGS[2]}, 1793000100),
                   delighted_response("7002", {"email": None, "phone_number": PHONE_SPELLINGS[2]}, 1793000000)],
             "2": []}  # fmt: skip
    monkeypatch.setenv("TOUCHPOINT_TEST_DELIGHTED_KEY", "dl-key")
    basic = {"Authorization": "Basic " + base64.b64encode(b"dl-key:").decode()}  # Delighted: the API key as user name
    async with LocalSource(pages, query_key("page"), require_headers=basic) as server:
        config = ConnectorConfig(name="delighted-acme", type="delighted_survey_responses", base_url=server.base_url,
                                 token_env="TOUCHPOINT_TEST_DELIGHTED_KEY", brand="acme")  # fmt: skip
        stats = await run_pass(build_connector(config, settings), settings)
    assert (stats.produced, stats.dead_lettered) == (2, 0), stats


async def test_same_person_same_customer_id_on_every_path_and_no_clear_text(
    live_settings: Settings, enricher, tmp_path: Path, monkeypatch
) -> None:
    settings = live_settings.with_overrides(**SECRETS, webhook_brand="acme", phone_region="US")
    await post_webhooks(settings)
    async with SignalProducer(settings) as producer:
        for path, fmt in write_files(tmp_path):
            channel = "chat" if fmt == "zendesk" else "survey"
            summary = await import_file(producer, path, channel=channel, source=fmt, brand="acme", fmt=fmt)
            assert (summary.produced, summary.dead_lettered) == (2, 0), (fmt, summary)
        # what customers type into comments: redacted before storage, sealed in Kafka, also in a dead letter
        typed = tmp_path / "comments.jsonl"
        typed.write_text(
            json.dumps({"id": "typed-1", "occurred_at": WHEN, "text": f"Call me on {PHONE_SPELLINGS[0]} or mail {EMAIL}."})
            + "\n" + json.dumps({"id": "typed-bad", "text": f"no time here, but {EMAIL} and {PHONE_SPELLINGS[1]}"}) + "\n"
        )  # fmt: skip
        summary = await import_file(producer, typed, channel="survey", source="typed", brand="acme", fmt="jsonl")
        assert (summary.produced, summary.dead_lettered) == (1, 1), summary
    await poll_delighted(settings, monkeypatch)
    expected = Identity.from_settings(settings)

    raw = await read_topic(settings, settings.topic_raw, "raw_signal")
    by_source_id = {record["source_id"]: (key, record) for key, record in raw}
    email_ids = {by_source_id[s][1]["customer_id"] for s in by_source_id if "email" in s or s in ("901", "7001")}
    phone_ids = {by_source_id[s][1]["customer_id"] for s in by_source_id if "phone" in s or s in ("902", "7002")}
    assert len(raw) == 15
    assert email_ids == {expected.of("email", EMAIL)}, "one email, one customer_id on every path"
    assert phone_ids == {expected.of("phone", PHONE_E164)}, "one phone, one customer_id on every path"
    # keyed by customer (the typed comment names nobody: keyed by its signal id)
    assert all(key == (record["customer_id"] or record["author"] or record["signal_id"]).encode() for key, record in raw)
    assert by_source_id["typed-1"][1]["customer_id"] is None

    async with running_worker(settings, enricher) as app:
        store = app.touchpoint["reader"]
        sql = "SELECT count() AS n FROM {db}.signals FINAL WHERE customer_id IN {ids:Array(String)}"
        ids = sorted(email_ids | phone_ids)
        await wait_for(lambda: _stored(store, sql, ids, 14), timeout_s=120)
        typed_id = by_source_id["typed-1"][1]["signal_id"]
        [typed_row] = await wait_for(lambda: store.query(
            "SELECT text_redacted, pii_found FROM {db}.signals FINAL WHERE signal_id = {id:String}", {"id": typed_id}))
        tables = await store.query("SELECT name FROM system.tables WHERE database = {db:String} AND engine NOT LIKE '%View'",
                                   {"db": settings.clickhouse_database})  # fmt: skip
        rows = [row for table in tables for row in await store.query(f"SELECT * FROM {{db}}.{table['name']}")]
    assert "[EMAIL]" in typed_row["text_redacted"] and "[PHONE]" in typed_row["text_redacted"], typed_row
    stored_text = json.dumps(rows, default=str).lower()
    topics = [settings.topic_raw, settings.topic_enriched, settings.topic_dead_letter, settings.topic_dead_letter_replays,
              settings.topic_actions]  # every topic Touchpoint writes  # fmt: skip
    messages = [m for topic in topics for m in await read_topic_records(settings, topic)]
    topic_bytes = b"".join((m.key or b"") + b"\x00" + (m.value or b"") for m in messages).lower()
    for clear in (EMAIL.lower(), "whitfield", "4155550132", "555-0132", "555 0132"):
        assert clear not in stored_text, f"{clear!r} stored in clear text"
        assert clear.encode() not in topic_bytes, f"{clear!r} in a topic in clear text"
    # negative control: the scan does see what it looks for
    assert b"quick checkout" in topic_bytes and "where is my refund" in stored_text


async def _stored(store, sql: str, ids: list[str], expected: int) -> bool:
    rows = await store.query(sql, {"ids": ids})
    return rows[0]["n"] >= expected
