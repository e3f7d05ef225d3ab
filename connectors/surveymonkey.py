"""SurveyMonkey (API v3) responses: by webhook and by polling a survey's bulk responses.

Shapes from SurveyMonkey's API docs (github.com/SurveyMonkey/public_api_docs,
api.surveymonkey.com/v3/docs): a response (``GET /v3/surveys/{id}/responses/
{id}/details``, or an item of ``/responses/bulk``) has ``id``, ``survey_id``,
``collector_id``, ``date_created``, ``date_modified``, ``response_status``,
``custom_variables`` and ``pages[].questions[].answers[]`` holding only ids
(``choice_id``, ``row_id``, ``other_id``) or ``text``. What an answer means
comes from the survey's details (``GET /v3/surveys/{id}/details``:
``pages[].questions[]`` with ``family``, ``subtype`` and ``answers.choices[]``
with their ``weight``), read into a small question map (:func:`question_map`).

Mapping (:func:`response_to_signal`):

* **score**: a ``matrix``/``rating`` question (rating scales, star ratings) is
  a score; its value is the chosen choice's ``weight`` and its scale the
  weights' range. A 0-10 rating (eleven weights 0..10, SurveyMonkey's Net
  Promoter question) is NPS; another is a ``rating`` on its own scale. Named
  question ids (webhook URL ``?nps=ID&csat=ID&ces=ID``, connector params
  ``nps_questions``/``csat_questions``/``ces_questions``) take that metric and
  must be on its standard scale; a named open-ended numeric answer counts too.
* **comment**: ``open_ended``/``essay`` answers (the comment box), or the
  questions named as ``comment`` (``comment_questions``); one-line answers
  (names, cities) never.
* **customer**: the ``email`` and ``phone`` rows of a ``demographic``
  (Contact Information) question and identifier keys of ``custom_variables``;
  other custom variables are attributes.

Webhook (``POST /webhooks/surveymonkey``): SurveyMonkey posts ``{"name",
"filter_type", "filter_id", "event_type", "event_id", "object_type",
"object_id", "event_datetime", "resources": {"survey_id", "respondent_id",
...}}`` with ``Sm-Apikey`` (the app's API key / client id) and
``Sm-Signature`` = BASE64(HMAC-SHA1(key "API_KEY&API_SECRET", raw body)).
Only ``response_completed`` becomes a signal: the receiver then fetches the
survey's details and the response's details with the access token.

Polling (``surveymonkey_responses``): ``GET /v3/surveys/{id}/responses/bulk``
with ``sort_by=date_modified&sort_order=DESC``, ``start_modified_at`` = the
newest ``date_modified`` of the last finished pass and ``status=completed``,
following ``links.next``; newest first, so an edit mid-pass only repeats a
response. The question map is read at the start of each pass and kept in the
cursor until the pass ends, so a restart mid-pass reads its pages the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from contextlib import aclosing
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping
from urllib.parse import urlencode

from touchpoint.connectors.framework import Connector, SourceRecord
from touchpoint.connectors.http import Page, link_pages
from touchpoint.connectors.surveys import (
    Ignored,
    ParseContext,
    SignatureError,
    SourceUnavailable,
    SurveyTool,
    join_text,
    named_refs,
    require_dict,
    same_signature,
    scored,
)  # fmt: skip
from touchpoint.core.checkpoints import Cursor
from touchpoint.core.identity import Identity, split_identifiers
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import SCORE_SCALES, InvalidSignal, RawSignal, Score

if TYPE_CHECKING:
    from touchpoint.connectors.http import HttpClient
    from touchpoint.core.settings import Settings

METRICS = ("nps", "csat", "ces")
NPS_WEIGHTS = list(range(11))


def question_map(details: Any) -> dict[str, dict[str, Any]]:
    """Question id -> what its answers mean, from ``/v3/surveys/{id}/details``."""
    questions: dict[str, dict[str, Any]] = {}
    for page in require_dict(details, "survey details").get("pages") or []:
        for question in page.get("questions") or []:
            answers = question.get("answers") or {}
            choices = [c for c in answers.get("choices") or [] if isinstance(c, dict)]
            questions[str(question["id"])] = {
                "family": question.get("family"), "subtype": question.get("subtype"),
                "weights": {str(c["id"]): c["weight"] for c in choices if c.get("weight") is not None and not c.get("is_na")},
                "rows": {str(r["id"]): r.get("type") for r in answers.get("rows") or [] if isinstance(r, dict) and r.get("id")},
            }  # fmt: skip
    return questions


def _rating_score(qid: str, question: Mapping[str, Any], answer: Mapping[str, Any], named: str | None) -> Score | None:
    weights = question.get("weights") or {}
    if answer.get("choice_id") is not None and str(answer["choice_id"]) in weights:
        value = weights[str(answer["choice_id"])]
        low, high = min(weights.values()), max(weights.values())
        if named is not None:
            if (low, high) != SCORE_SCALES[named]:
                raise InvalidSignal(f"question {qid} is a {low}-{high} rating, not on the {named} scale; leave it unnamed")
            return scored(named, value)
        if sorted(weights.values()) == NPS_WEIGHTS:
            return scored("nps", value)
        return scored("rating", value, high, low)
    if named is not None and answer.get("text") not in (None, ""):
        return scored(named, answer["text"])  # a named numeric open-ended answer
    return None


def response_to_signal(
    response: Any, questions: Mapping[str, Any], options: Mapping[str, Any], *, brand: str, identity: Identity
) -> RawSignal:
    """A SurveyMonkey response with its survey's question map as a RawSignal (module docstring).

    ``options`` names questions: ``nps``/``csat``/``ces``/``comment`` (webhook
    query) or ``nps_questions``/... (connector params).
    """
    response = require_dict(response, "the response")
    named = {m: named_refs(options, m) | named_refs(options, f"{m}_questions") for m in (*METRICS, "comment")}
    scores: list[tuple[str, Score]] = []
    texts: list[str] = []
    found, attributes = split_identifiers(require_dict(response.get("custom_variables") or {}, "custom_variables"))
    for page in response.get("pages") or []:
        for answered in require_dict(page, "page").get("questions") or []:
            qid = str(answered["id"])
            question = questions.get(qid) or {}
            metric = next((m for m in METRICS if qid in named[m]), None)
            for answer in answered.get("answers") or []:
                if question.get("family") == "demographic":
                    kind = (question.get("rows") or {}).get(str(answer.get("row_id")))
                    if kind in ("email", "phone") and answer.get("text"):
                        found.setdefault(kind, str(answer["text"]))
                    continue
                if (question.get("family"), question.get("subtype")) == ("matrix", "rating") or metric:
                    score = _rating_score(qid, question, answer, metric)
                    if score is not None:
                        scores.append((qid, score))
                elif isinstance(answer.get("text"), str) and (
                    qid in named["comment"] if named["comment"] else question.get("subtype") == "essay"
                ):
                    texts.append(answer["text"])
    chosen = next((s for m in (*METRICS, "rating") for _, s in scores if s.metric == m), None)
    for qid, score in scores:
        if score is not chosen:
            attributes[f"score.{qid}"] = f"{score.metric} {score.value:g} ({score.scale_min}-{score.scale_max})"
    for key in ("survey_id", "collector_id", "response_status", "collection_mode"):
        attributes[key] = str(response.get(key) or "")
    return RawSignal(
        source="surveymonkey", source_id=str(response["id"]), channel="survey", brand=brand,
        occurred_at=parse_timestamp(response.get("date_created"), "date_created"), text=join_text(texts),
        score=chosen, customer_id=identity.resolve(found), attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- webhook


def sign_surveymonkey(body: bytes, api_key: str, api_secret: str) -> str:
    digest = hmac.new(f"{api_key}&{api_secret}".encode(), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_surveymonkey(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    """``secret`` is ``API_KEY&API_SECRET`` (see :data:`WEBHOOK`)."""
    api_key, _, api_secret = secret.partition("&")
    given, sent_key = headers.get("Sm-Signature"), headers.get("Sm-Apikey")
    if not given or not sent_key:
        raise SignatureError("Sm-Signature or Sm-Apikey header is missing")
    if not same_signature(sent_key, api_key):
        raise SignatureError("Sm-Apikey is not this app's API key")
    if not same_signature(given, sign_surveymonkey(body, api_key, api_secret)):
        raise SignatureError("Sm-Signature does not match the body")


async def fetch_surveymonkey(event: Any, ctx: ParseContext, http: "HttpClient | None") -> dict[str, Any]:
    """The event carries ids only: fetch the survey's question map and the response's details."""
    event = require_dict(event, "the SurveyMonkey event")
    if event.get("event_type") != "response_completed":
        raise Ignored(f"event_type {event.get('event_type')!r} is not response_completed")
    survey_id = (event.get("resources") or {}).get("survey_id")
    response_id = event.get("object_id") or (event.get("resources") or {}).get("respondent_id")
    if not survey_id or not response_id:
        raise InvalidSignal("resources.survey_id and object_id are needed to fetch the response")
    if http is None:
        raise SourceUnavailable("set TOUCHPOINT_SURVEYMONKEY_ACCESS_TOKEN so the receiver can fetch responses")
    details = await http.get_json(f"/v3/surveys/{survey_id}/details")
    response = await http.get_json(f"/v3/surveys/{survey_id}/responses/{response_id}/details")
    return {"questions": question_map(details), "response": response}


def parse_surveymonkey(payload: Any, ctx: ParseContext) -> RawSignal:
    return response_to_signal(payload["response"], payload["questions"], ctx.query, brand=ctx.brand, identity=ctx.identity)


def _signing_key(settings: "Settings") -> str | None:
    key, secret = settings.surveymonkey_api_key, settings.surveymonkey_api_secret
    return f"{key}&{secret}" if key and secret else None


def _api(settings: "Settings") -> tuple[str, dict[str, str]] | None:
    token = settings.surveymonkey_access_token
    return (settings.surveymonkey_base_url, {"Authorization": f"Bearer {token}"}) if token else None


WEBHOOK = SurveyTool(
    "surveymonkey", "surveymonkey_api_secret", verify_surveymonkey, parse_surveymonkey, fetch=fetch_surveymonkey,
    api=_api, secret=_signing_key, secret_env="TOUCHPOINT_SURVEYMONKEY_API_KEY and TOUCHPOINT_SURVEYMONKEY_API_SECRET",
)  # fmt: skip


# ---------------------------------------------------------------- polling


class SurveyMonkeyResponses(Connector):
    """A survey's ``/responses/bulk``, newest modification first (module docstring).

    params: ``survey_id`` (required), ``per_page`` (max 100, default 100),
    ``status`` (default ``completed``), ``nps_questions`` / ``csat_questions``
    / ``ces_questions`` / ``comment_questions`` (question ids), ``max_pages``
    (how deep the first pass walks back; default 1000). token_env: an access token.
    """

    name = "surveymonkey_responses"
    source = "surveymonkey"
    channel = "survey"
    cursor_field = "date_modified"
    default_base_url = "https://api.surveymonkey.com"

    async def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:  # type: ignore[override]  # an async generator
        survey_id = self.required_param("survey_id", "the survey whose responses to read")
        state = dict(cursor or {})
        questions = state.get("questions") if state.get("page") else None
        if questions is None:  # a new pass reads the survey as it is now
            questions = question_map(await self.http.get_json(f"/v3/surveys/{survey_id}/details"))
        watermark = state.get("watermark")
        query = {"per_page": int(self.params.get("per_page", 100)), "sort_by": "date_modified", "sort_order": "DESC",
                 "status": self.params.get("status", "completed")}  # fmt: skip
        if watermark is not None:
            query["start_modified_at"] = datetime.fromtimestamp(watermark, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        first = self.http.url_for(f"/v3/surveys/{survey_id}/responses/bulk") + "?" + urlencode(query)

        def pages(start: str | None) -> AsyncIterator[Page]:
            return link_pages(self.http, first, parse=json.loads, start=start,
                              next_url_of=lambda body: (body.get("links") or {}).get("next"))  # fmt: skip

        walk = self.newest_first(
            pages, cursor, items_of=lambda body: list(body.get("data") or []),
            position_of=lambda r: parse_timestamp(r["date_modified"]).timestamp(), max_pages=int(self.params.get("max_pages", 1000)),
        )  # fmt: skip
        async with aclosing(walk):
            async for record in walk:
                if record.cursor is not None and record.cursor.get("page"):
                    yield SourceRecord.checkpoint({**record.cursor, "questions": questions})
                elif record.cursor is not None:
                    yield record
                else:
                    raw = json.dumps(record.item).encode()
                    yield SourceRecord({"response": record.item, "questions": questions}, raw=raw)

    def to_signal(self, item: dict[str, Any]) -> RawSignal:
        return response_to_signal(item["response"], item["questions"], self.params, brand=self.brand, identity=self.identity)
