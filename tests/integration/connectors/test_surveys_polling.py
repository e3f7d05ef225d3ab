"""Survey and support tools' polling connectors through the standard connector suite.

Real broker (``live_settings``), real local HTTP server serving pages shaped
like each tool's documentation (the payload files say where each comes from).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from touchpoint.cli import console as cli_console
from touchpoint.cli import main
from touchpoint.connectors.testing import (
    ConnectorSuite,
    LocalSource,
    Payloads,
    json_key,
    query_key,
    read_topic,
    run_pass,
)
from touchpoint.core.checkpoints import CheckpointStore

PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "test-token-not-a-secret"


class TestDelightedSurveyResponses(ConnectorSuite):
    connector_type = "delighted_survey_responses"
    payloads = PAYLOADS / "delighted_survey_responses.json"
    params = {"per_page": 3}
    page_key = query_key("page")
    token = TOKEN
    auth_header = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()  # the API key as the user name


class TestSurveyMonkeyResponses(ConnectorSuite):
    connector_type = "surveymonkey_responses"
    payloads = PAYLOADS / "surveymonkey_responses.json"
    params = {"survey_id": "105723396", "per_page": 3}
    # bulk pages by ?page= (links.next), the survey's details by path
    page_key = staticmethod(lambda request: "details" if request.path.endswith("/details") else request.query.get("page"))


def _intercom_key(request: web.Request) -> str | None:
    """Search pages by the body's pagination.starting_after; conversations by their path."""
    return json_key("pagination", "starting_after")(request) if request.method == "POST" else request.path


class TestIntercomConversations(ConnectorSuite):
    connector_type = "intercom_conversations"
    payloads = PAYLOADS / "intercom_conversations.json"
    params = {"per_page": 3}
    page_key = staticmethod(_intercom_key)


def _qualtrics_key(request: web.Request) -> str | None:
    """Export starts by whether they continue an earlier export; progress and files by their path."""
    if request.method == "POST":
        return "continued" if json_key("continuationToken")(request) else None
    return request.path.split("/export-responses/", 1)[1]


class ZippedExports(LocalSource):
    """Serves an export file (a key ending in /file) as Qualtrics does: a zip holding one JSON file."""

    def respond(self, key: str | None, body: Any) -> web.StreamResponse:
        if not (key or "").endswith("/file"):
            return super().respond(key, body)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("Post-delivery survey.json", json.dumps(body))
        return web.Response(body=buffer.getvalue(), content_type="application/zip")


class TestQualtricsExport(ConnectorSuite):
    connector_type = "qualtrics_export"
    payloads = PAYLOADS / "qualtrics_export.json"
    params = {"survey_id": "SV_3gbwq8aJgqPwQDP", "csat_questions": ["QID3"], "comment_questions": ["QID2"],
              "checkpoint_every": 2, "poll_every_s": 0.05}  # fmt: skip
    page_key = staticmethod(_qualtrics_key)
    token = TOKEN
    auth_header_name, auth_header = "X-API-TOKEN", "{token}"
    server_error_page = 2  # the export file; the last keys belong to the next pass's (continued) export

    def source(self, payloads: Payloads) -> LocalSource:
        plain = super().source(payloads)
        return ZippedExports(plain.pages, plain.page_key, plain.content_type, plain.require_headers)


async def test_qualtrics_restart_inside_the_export_file_sends_only_the_rest(live_settings, monkeypatch) -> None:
    """A crash after ``offset`` responses of a downloaded export resumes there, not at the file's start."""
    suite = TestQualtricsExport()
    payloads = suite.load()
    CheckpointStore(live_settings.data_dir / "checkpoints").save_sync("under-test", {
        "file_id": "875aa28c-4d86-4a2b-b888-3d958396b8f6", "next": "cont_TkOdPGgGbtqXJ1", "offset": 2, "continuation": None,
    })  # fmt: skip
    async with suite.source(payloads) as server:
        stats = await run_pass(suite.connector(live_settings, server, monkeypatch), live_settings)
        assert [hit.key for hit in server.hits] == ["875aa28c-4d86-4a2b-b888-3d958396b8f6/file"]
    assert (stats.read, stats.produced, stats.dead_lettered) == (4, 3, 1)
    sent = {value["source_id"] for _, value in await read_topic(live_settings, live_settings.topic_raw, "raw_signal")}
    assert sent == {"R_3Ef8GhIj0KlMn4O", "R_4PqRsTuVwXyZ5aB", "R_5CdEfGhIjKlMn6O"}
    assert CheckpointStore(live_settings.data_dir / "checkpoints").load_sync("under-test") == {"continuation": "cont_TkOdPGgGbtqXJ1"}


async def test_qualtrics_backfill_from_the_command_line_draws_its_progress(live_settings, monkeypatch, capsys, tmp_path) -> None:
    suite = TestQualtricsExport()
    async with suite.source(suite.load()) as server:
        config = tmp_path / "qualtrics.yaml"
        config.write_text(yaml.safe_dump({"brand": "acme", "connectors": [
            {"name": "qualtrics-backfill", "type": "qualtrics_export", "base_url": server.base_url,
             "token_env": "TEST_QUALTRICS_TOKEN", "params": TestQualtricsExport.params},
        ]}))  # fmt: skip
        monkeypatch.setenv("TEST_QUALTRICS_TOKEN", TOKEN)
        for field in ("kafka_bootstrap", "topic_raw", "topic_dead_letter", "data_dir", "customer_id_secret"):
            monkeypatch.setenv(f"TOUCHPOINT_{field.upper()}", str(getattr(live_settings, field)))
        monkeypatch.setenv("TOUCHPOINT_METRICS_PORT", "0")
        monkeypatch.setattr(cli_console, "width", 200)  # room for the whole progress line
        code = await asyncio.to_thread(main, ["connect", str(config), "--once"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sending responses 6/6" in out, out  # the bar's last step: every response of the export file
    assert TOKEN not in out
