"""Survey webhook payloads -> RawSignal, and how each tool signs its requests.

Three shapes are understood (see README "Survey webhooks"):

* **Typeform** (``POST /webhooks/typeform``): ``{"event_id", "event_type":
  "form_response", "form_response": {"form_id", "token", "submitted_at",
  "hidden": {...}, "definition": {"title", "fields": [...]}, "answers": [...]}}``.
  Signed with ``Typeform-Signature: sha256=BASE64(HMAC-SHA256(secret, raw body))``;
  Typeform sends no timestamp header, so there is no staleness check (a
  replayed response has the same ``token``, hence the same signal_id).
  Scores: an answer to an ``nps`` field is NPS 0-10; other ``number`` answers
  are told apart by the URL query (``?csat=FIELD_REF&ces=FIELD_REF``) or,
  failing that, by the field title (satisf -> CSAT, effort/easy -> CES,
  recommend -> NPS); else a plain rating on the field's steps.
* **Formbricks** (``POST /webhooks/formbricks``): ``{"webhookId", "event":
  "responseFinished", "data": {"id", "surveyId", "survey": {"title"},
  "data": {QUESTION_ID: answer}, "contact": {...}, "contactAttributes": {...},
  "meta": {...}, "createdAt", "updatedAt", "finished"}}`` (a one-element list
  of it is accepted too, as Formbricks' docs print it). Signed per Standard
  Webhooks: ``webhook-id``, ``webhook-timestamp`` (unix seconds, checked
  against the tolerance), ``webhook-signature: v1,BASE64(HMAC-SHA256(
  base64decode(secret without "whsec_"), id + "." + timestamp + "." + body))``.
  The payload carries no question types, so the URL says which question is
  what: ``/webhooks/formbricks?nps=QID&comment=QID`` (also ``csat``, ``ces``,
  ``metric`` for an unnamed single numeric answer). Only ``responseFinished``
  becomes a signal; ``responseCreated``/``responseUpdated`` are answered 200
  and skipped (a half-answered survey is not a response yet).
* **Generic** (``POST /webhooks/generic``), for in-house survey tools::

      {
        "id": "resp-123",                       # required: your id for this response
        "occurred_at": "2026-11-02T10:15:00Z",  # required, ISO 8601
        "nps": 9 | "csat": 4 | "ces": 6,        # or "score": {"metric": "nps", "value": 9}
                                                #    ("rating" also needs "scale_max")
        "comment": "free text",                 # optional ("text" works too)
        "customer": {"email": "...", "phone": "...", "account_id": "..."},  # optional
        "touchpoint": "checkout", "brand": "acme", "survey": "post-purchase",
        "attributes": {"store": "berlin-1"}     # optional, strings
      }

  Signed with ``X-Touchpoint-Timestamp: UNIX_SECONDS`` and
  ``X-Touchpoint-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))``.

Customer identifiers (emails, phones, account ids in hidden fields, contact
attributes or ``customer``) become ``customer_id`` through
touchpoint.core.identity; they are never copied into attributes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from touchpoint.core.identity import Identity, split_identifiers
from touchpoint.core.signing import sign_generic
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import SCORE_SCALES, InvalidSignal, RawSignal, Score


class SignatureError(Exception):
    """The request is not provably from the tool: answer 401."""


class MalformedPayload(Exception):
    """The body is not JSON at all: dead-letter at connector.parse, answer 400."""


class Ignored(Exception):
    """A well-formed event that is not a finished response: answer 200, produce nothing."""


@dataclass(frozen=True)
class ParseContext:
    brand: str
    identity: Identity
    query: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- signatures


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _check_age(timestamp: str | None, now: float, tolerance_s: float) -> str:
    if not timestamp:
        raise SignatureError("timestamp header is missing")
    try:
        age = now - float(timestamp)
    except ValueError as exc:
        raise SignatureError(f"timestamp {timestamp!r} is not unix seconds") from exc
    if abs(age) > tolerance_s:
        raise SignatureError(f"timestamp is {age:.0f}s away from now, over the {tolerance_s:.0f}s tolerance")
    return timestamp


def sign_typeform(body: bytes, secret: str) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_typeform(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    given = headers.get("Typeform-Signature")
    if not given:
        raise SignatureError("Typeform-Signature header is missing")
    if not _equal(given, sign_typeform(body, secret)):
        raise SignatureError("Typeform-Signature does not match the body")


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_standard(message_id: str, timestamp: str, body: bytes, secret: str) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()).decode()


def verify_standard(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    """Standard Webhooks (Formbricks): several space-separated ``v1,SIG`` may be sent during key rotation."""
    message_id, given = headers.get("webhook-id"), headers.get("webhook-signature")
    if not message_id or not given:
        raise SignatureError("webhook-id or webhook-signature header is missing")
    timestamp = _check_age(headers.get("webhook-timestamp"), now, tolerance_s)
    expected = sign_standard(message_id, timestamp, body, secret)
    if not any(_equal(candidate, expected) for candidate in given.split()):
        raise SignatureError("webhook-signature does not match the body")


def verify_generic(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    given = headers.get("X-Touchpoint-Signature")
    if not given:
        raise SignatureError("X-Touchpoint-Signature header is missing")
    timestamp = _check_age(headers.get("X-Touchpoint-Timestamp"), now, tolerance_s)
    if not _equal(given, sign_generic(timestamp, body, secret)):
        raise SignatureError("X-Touchpoint-Signature does not match the body")


# ---------------------------------------------------------------- helpers



def scored(metric: str, value: Any, scale_max: Any = None, scale_min: int = 1) -> Score:
    """A Score on the metric's standard scale; raises InvalidSignal naming the problem."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidSignal(f"{metric} {value!r} is not a number")
    try:
        number = float(value)
    except ValueError as exc:
        raise InvalidSignal(f"{metric} {value!r} is not a number") from exc
    if metric not in SCORE_SCALES:
        raise InvalidSignal(f"score metric {metric!r} is not one of {', '.join(SCORE_SCALES)}")
    scale = SCORE_SCALES[metric]
    if scale is None:
        if scale_max is None:
            raise InvalidSignal("a rating needs scale_max (e.g. 5 for five stars)")
        low, high = scale_min, int(scale_max)
    else:
        low, high = scale
    if not low <= number <= high:
        raise InvalidSignal(f"{metric} score {number:g} is outside its scale {low}-{high}")
    return Score(metric, number, low, high)


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidSignal(f"{what} must be a JSON object (got {type(value).__name__})")
    return value


def _text(parts: list[str]) -> str | None:
    joined = "\n".join(p.strip() for p in parts if p and p.strip())
    return joined or None


# ---------------------------------------------------------------- Typeform

_TITLE_HINTS = (("recommend", "nps"), ("satisf", "csat"), ("effort", "ces"), ("easy", "ces"))


def _typeform_metric(field: Mapping[str, Any], definition: Mapping[str, Any], query: Mapping[str, str]) -> str:
    keys = {str(field.get("ref") or ""), str(field.get("id") or "")} - {""}
    for metric in ("nps", "csat", "ces"):
        if query.get(metric) in keys:
            return metric
    if field.get("type") == "nps":
        return "nps"
    title = str(definition.get("title") or "").lower()
    for hint, metric in _TITLE_HINTS:
        if hint in title:
            return metric
    return "rating"


def parse_typeform(payload: Any, ctx: ParseContext) -> RawSignal:
    payload = _require_dict(payload, "the Typeform payload")
    if payload.get("event_type") != "form_response":
        raise Ignored(f"event_type {payload.get('event_type')!r} is not form_response")
    response = _require_dict(payload.get("form_response"), "form_response")
    token = response.get("token")
    if not token:
        raise InvalidSignal("form_response.token is missing; it identifies the response")
    definition = _require_dict(response.get("definition") or {}, "form_response.definition")
    fields = {f.get("id"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    identifiers, attributes = split_identifiers(_require_dict(response.get("hidden") or {}, "hidden"))
    touchpoint = attributes.pop("touchpoint", None)
    scores: dict[str, Score] = {}
    texts: list[str] = []
    comment_ref = ctx.query.get("comment")
    for answer in response.get("answers") or []:
        if not isinstance(answer, dict):
            raise InvalidSignal("every entry of form_response.answers must be an object")
        kind, field = answer.get("type"), _require_dict(answer.get("field") or {}, "answer.field")
        value = answer.get(kind) if isinstance(kind, str) else None
        if kind == "number":
            described = fields.get(field.get("id"), {})
            metric = _typeform_metric({**described, **field}, described, ctx.query)
            props = described.get("properties") or {}
            start = 1 if field.get("type") == "rating" or props.get("start_at_one") else 0
            steps = props.get("steps") or (5 if field.get("type") == "rating" else 10)
            scores.setdefault(metric, scored(metric, value, steps + start - 1 if metric == "rating" else None, start))
        elif kind == "text" and isinstance(value, str):
            if not comment_ref or comment_ref in (field.get("ref"), field.get("id")):
                texts.append(value)
        elif kind == "email" and value:
            identifiers.setdefault("email", str(value))
        elif kind == "phone_number" and value:
            identifiers.setdefault("phone", str(value))
    score = next((scores[m] for m in ("nps", "csat", "ces", "rating") if m in scores), None)
    attributes.update(form_id=str(response.get("form_id") or definition.get("id") or ""), form_title=str(definition.get("title") or ""))
    for metric, other in scores.items():
        if other is not score:
            attributes[f"{metric}_score"] = f"{other.value:g}"
    return RawSignal(
        source="typeform", source_id=str(token), channel="survey", brand=ctx.brand,
        occurred_at=parse_timestamp(response.get("submitted_at"), "form_response.submitted_at"),
        text=_text(texts), score=score, customer_id=ctx.identity.resolve(identifiers), touchpoint_hint=touchpoint,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- Formbricks

_NOT_COMMENTS = {"clicked", "accepted", "dismissed", "skipped"}


def parse_formbricks(payload: Any, ctx: ParseContext) -> RawSignal:
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    payload = _require_dict(payload, "the Formbricks payload")
    if payload.get("event") != "responseFinished":
        raise Ignored(f"event {payload.get('event')!r} is not responseFinished")
    response = _require_dict(payload.get("data"), "data")
    if not response.get("id"):
        raise InvalidSignal("data.id is missing; it identifies the response")
    answers = _require_dict(response.get("data") or {}, "data.data")
    named = {ctx.query[m]: m for m in ("nps", "csat", "ces") if ctx.query.get(m)}
    comment_id = ctx.query.get("comment")
    score: Score | None = None
    texts: list[str] = []
    numeric = [(qid, v) for qid, v in answers.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for qid, value in numeric:
        if qid in named and score is None:
            score = scored(named[qid], value)
    if score is None and not named and len(numeric) == 1:
        metric = ctx.query.get("metric") or "rating"
        score = scored(metric, numeric[0][1], 10, 0)
    for qid, value in answers.items():
        if isinstance(value, str) and value.strip().lower() not in _NOT_COMMENTS:
            if (comment_id is None and qid not in named) or qid == comment_id:
                texts.append(value)
    contact = response.get("contact") or {}
    found, _ = split_identifiers(response.get("contactAttributes") or {})
    if isinstance(contact, dict) and (contact.get("userId") or contact.get("id")):
        found.setdefault("account", str(contact.get("userId") or contact.get("id")))
    survey = response.get("survey") or {}
    meta = response.get("meta") or {}
    attributes = {
        "survey_id": str(response.get("surveyId") or ""),
        "survey_title": str(survey.get("title") or "") if isinstance(survey, dict) else "",
        "country": str(meta.get("country") or "") if isinstance(meta, dict) else "",
        "language": str(response.get("language") or ""),
    }
    return RawSignal(
        source="formbricks", source_id=str(response["id"]), channel="survey", brand=ctx.brand,
        occurred_at=parse_timestamp(response.get("updatedAt") or response.get("createdAt"), "data.updatedAt"),
        text=_text(texts), score=score, customer_id=ctx.identity.resolve(found),
        url=(meta.get("url") if isinstance(meta, dict) else None) or None,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- generic


def parse_generic(payload: Any, ctx: ParseContext) -> RawSignal:
    payload = _require_dict(payload, "the payload")
    if not payload.get("id"):
        raise InvalidSignal("id is missing: each response needs your own id (for deduplication)")
    score: Score | None = None
    if isinstance(payload.get("score"), dict):
        given = payload["score"]
        score = scored(str(given.get("metric")), given.get("value"), given.get("scale_max"))
    else:
        for metric in ("nps", "csat", "ces"):
            if payload.get(metric) is not None:
                score = scored(metric, payload[metric])
                break
    customer = _require_dict(payload.get("customer") or {}, "customer")
    found, _ = split_identifiers(customer)
    attributes = _require_dict(payload.get("attributes") or {}, "attributes")
    _, attributes = split_identifiers(attributes)
    if payload.get("survey"):
        attributes["survey"] = str(payload["survey"])
    text = payload.get("comment", payload.get("text"))
    return RawSignal(
        source=str(payload.get("source") or "generic"), source_id=str(payload["id"]), channel="survey",
        brand=str(payload.get("brand") or ctx.brand), occurred_at=parse_timestamp(payload.get("occurred_at")),
        text=text if isinstance(text, str) and text.strip() else None, score=score,
        customer_id=ctx.identity.resolve(found), touchpoint_hint=payload.get("touchpoint") or None, attributes=attributes,
    )  # fmt: skip


# ---------------------------------------------------------------- registry

Verifier = Callable[[bytes, Mapping[str, str], str, float, float], None]
Parser = Callable[[Any, ParseContext], RawSignal]


@dataclass(frozen=True)
class SurveyTool:
    name: str
    secret_setting: str  # the Settings field holding its secret
    verify: Verifier
    parse: Parser


TOOLS: dict[str, SurveyTool] = {
    "typeform": SurveyTool("typeform", "typeform_webhook_secret", verify_typeform, parse_typeform),
    "formbricks": SurveyTool("formbricks", "formbricks_webhook_secret", verify_standard, parse_formbricks),
    "generic": SurveyTool("generic", "generic_webhook_secret", verify_generic, parse_generic),
}
