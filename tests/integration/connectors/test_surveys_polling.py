"""Survey and support tools' polling connectors through the standard connector suite.

Real broker (``live_settings``), real local HTTP server serving pages shaped
like each tool's documentation (the payload files say where each comes from).
"""

from __future__ import annotations

import base64
from pathlib import Path

from touchpoint.connectors.testing import ConnectorSuite, query_key

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
