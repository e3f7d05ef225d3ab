"""Delighted survey responses: by webhook and by polling (direct survey signals).

One mapping for both ways in (:func:`response_to_signal`), for the survey
response object of app.delighted.com/docs/api (``id``, ``person``,
``survey_type``, ``score``, ``comment``, ``permalink``, ``created_at``,
``updated_at`` as Unix seconds, ``person_properties``, ``tags``,
``additional_answers``):

* the score's metric follows the survey type: ``nps`` and ``enps`` are NPS
  0-10, ``csat`` CSAT 1-5, ``ces`` CES 1-7, ``5star`` and ``smileys`` a 1-5
  rating; another type keeps its score as an attribute only;
* the text is the comment plus the free-text answers to additional questions;
* ``person.email`` / ``person.phone_number`` become ``customer_id`` (else the
  Delighted person id, namespaced); the name never leaves the payload;
* ``occurred_at`` is ``created_at`` (a response keeps its day when a comment
  is added later, so the store keeps one row per response).

Webhook (``POST /webhooks/delighted``, app.delighted.com/docs/api/webhooks):
``{"event_type": "survey_response.created" | "survey_response.updated" |
"unsubscribe.created", "event_id", "event_data": {response, person
expanded}}``, signed ``X-Delighted-Webhook-Signature: sha256=HEX(HMAC-SHA256(
api key, raw body))``. Comments usually arrive in ``.updated`` a few minutes
after the score: both events are the same signal_id, the later one wins.

Polling (``delighted_survey_responses``): ``GET /v1/survey_responses.json``
with Basic auth (the API key as user name), ``order=desc:updated_at``,
``updated_since`` = newest ``updated_at`` of the last finished pass (params
``since`` bounds the first pass), ``expand[]=person``, ``per_page`` up to
100 and ``page`` numbers until an empty page: newest first, so a response
updated mid-pass moves to the top and only repeats (same signal_id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, AsyncIterator, Mapping
from urllib.parse import urlencode

from touchpoint.connectors.framework import Connector, SourceRecord
from touchpoint.connectors.http import Page, numbered_pages
from touchpoint.connectors.surveys import (
    Ignored,
    ParseContext,
    SurveyTool,
    check_signature_header,
    join_text,
    require_dict,
    scored,
)  # fmt: skip
from touchpoint.core.checkpoints import Cursor
from touchpoint.core.identity import Identity, split_identifiers
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import InvalidSignal, RawSignal, Score

# survey_type -> (metric, scale max for ratings); NPS, CSAT and CES use their standard scales.
SURVEY_METRICS: dict[str, tuple[str, int | None]] = {
    "nps": ("nps", None), "enps": ("nps", None), "csat": ("csat", None), "ces": ("ces", None),
    "5star": ("rating", 5), "smileys": ("rating", 5),
}  # fmt: skip


def _score(response: Mapping[str, Any]) -> Score | None:
    value = response.get("score")
    known = SURVEY_METRICS.get(str(response.get("survey_type") or "nps"))
    if value is None or known is None:
        return None
    metric, scale_max = known
    return scored(metric, value, scale_max)


def _person(response: Mapping[str, Any]) -> dict[str, Any]:
    """The person object (expanded), or just its id when the list was not expanded."""
    person = response.get("person")
    return person if isinstance(person, dict) else {"id": person} if person else {}


def response_to_signal(response: Any, *, brand: str, identity: Identity) -> RawSignal:
    """A Delighted survey response (webhook ``event_data`` or a listed response) as a RawSignal."""
    response = require_dict(response, "the survey response")
    person = _person(response)
    found, attributes = split_identifiers(require_dict(response.get("person_properties") or {}, "person_properties"))
    customer = identity.customer_id(
        email=person.get("email") or found.get("email"), phone=person.get("phone_number") or found.get("phone"),
        account=found.get("account"),
    ) or identity.of("account", person.get("id"), "delighted")  # fmt: skip
    texts = [str(response.get("comment") or "")]
    for extra in response.get("additional_answers") or []:
        value = (extra.get("value") or {}) if isinstance(extra, dict) else {}
        if isinstance(value.get("free_response"), str):
            texts.append(value["free_response"])
    attributes["survey_type"] = str(response.get("survey_type") or "")
    if response.get("survey_type") not in SURVEY_METRICS and response.get("score") is not None:
        attributes["delighted_score"] = str(response["score"])  # a scale Delighted does not document as a metric
    tags = [t for t in response.get("tags") or [] if isinstance(t, str)]
    if tags:
        attributes["tags"] = ",".join(tags)
    return RawSignal(
        source="delighted", source_id=str(response["id"]), channel="survey", brand=brand,
        occurred_at=parse_timestamp(response.get("created_at"), "created_at"), text=join_text(texts),
        score=_score(response), customer_id=customer, url=response.get("permalink") or None,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- webhook


def sign_delighted(body: bytes, api_key: str) -> str:
    return "sha256=" + hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()


def verify_delighted(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    check_signature_header(headers, "X-Delighted-Webhook-Signature", sign_delighted(body, secret))


def parse_delighted(payload: Any, ctx: ParseContext) -> RawSignal:
    payload = require_dict(payload, "the Delighted payload")
    if payload.get("event_type") not in ("survey_response.created", "survey_response.updated"):
        raise Ignored(f"event_type {payload.get('event_type')!r} is not a survey response")
    response = require_dict(payload.get("event_data"), "event_data")
    if not response.get("id"):
        raise InvalidSignal("event_data.id is missing; it identifies the response")
    return response_to_signal(response, brand=ctx.brand, identity=ctx.identity)


WEBHOOK = SurveyTool("delighted", "delighted_api_key", verify_delighted, parse_delighted)


# ---------------------------------------------------------------- polling


class DelightedSurveyResponses(Connector):
    """Delighted ``GET /v1/survey_responses.json``, newest update first (module docstring).

    params: ``per_page`` (max 100, default 100), ``since`` (first pass only:
    ISO 8601 or Unix seconds), ``max_pages`` (how deep one pass walks;
    default 1000). token_env: the Delighted API key.
    """

    name = "delighted_survey_responses"
    source = "delighted"
    channel = "survey"
    cursor_field = "updated_at"
    default_base_url = "https://api.delighted.com"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}

    def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:
        watermark = (cursor or {}).get("watermark")
        since = self.params.get("since")
        first_bound = int(parse_timestamp(since, "params.since").timestamp()) if since not in (None, "") else None
        query = {
            "per_page": int(self.params.get("per_page", 100)), "order": "desc:updated_at", "expand[]": "person",
            "updated_since": int(watermark) if watermark is not None else first_bound,
        }  # fmt: skip
        query = {k: v for k, v in query.items() if v is not None}

        def pages(start: str | None) -> AsyncIterator[Page]:
            return numbered_pages(
                self.http, lambda n: f"/v1/survey_responses.json?{urlencode({**query, 'page': n})}",
                is_empty=lambda body: not body, last=int(self.params.get("max_pages", 1000)), start=start,
            )  # fmt: skip

        return self.newest_first(pages, cursor, items_of=_listed, position_of=_updated_at)

    def to_signal(self, item: dict[str, Any]) -> RawSignal:
        return response_to_signal(item, brand=self.brand, identity=self.identity)


def _listed(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise ValueError(f"Delighted answered {type(body).__name__}, not a list of survey responses; check base_url")
    return body


def _updated_at(response: Mapping[str, Any]) -> float:
    return float(response.get("updated_at") or response["created_at"])
