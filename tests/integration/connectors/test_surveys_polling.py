"""Survey and support tools' polling connectors through the standard connector suite.

Real broker (``live_settings``), real local HTTP server serving pages shaped
like each tool's documentation (the payload files say where each comes from).
"""

from __future__ import annotations

import base64
from pathlib import Path

from aiohttp import web

from touchpoint.connectors.testing import ConnectorSuite, json_key, query_key

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
