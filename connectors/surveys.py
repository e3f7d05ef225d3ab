"""Survey webhook payloads -> RawSignal, how each tool signs its requests, and the tool registry.

Three shapes live here (see README "Supported sources"); SurveyMonkey,
Qualtrics, Delighted and Intercom have their own modules, and
connectors/webhooks.py lists every tool the receiver knows:

* **Typeform** (``POST /webhooks/typeform``): ``{"event_id", "event_type":
  "form_response", "form_response": {"form_id", "token", "submitted_at",
  "hidden": {...}, "definition": {"title", "fields": [...]}, "answers": [...]}}``.
  Signed with ``Typeform-Signature: sha256=BASE64(HMAC-SHA256(secret, raw body))``;
  Typeform sends no timestamp header, so there is no staleness check (a
  replayed response has the same ``token``, hence the same signal_id).
  Scores come only from score fields (``nps`` 0-10, ``opinion_scale`` and
  ``rating`` on their real scale) or fields the URL names
  (``?csat=FIELD_REF&ces=FIELD_REF``); the comment from ``long_text`` answers
  or the fields ``?comment=REF,REF`` names (see :func:`parse_typeform`).
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
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from touchpoint.core.identity import Identity, split_identifiers
from touchpoint.core.signing import sign_generic
from touchpoint.core.times import parse_timestamp
from touchpoint.schemas.signal import SCORE_SCALES, InvalidSignal, RawSignal, Score

if TYPE_CHECKING:
    from touchpoint.connectors.http import HttpClient
    from touchpoint.core.settings import Settings


class SignatureError(Exception):
    """The request is not provably from the tool: answer 401."""


class MalformedPayload(Exception):
    """The body is not JSON at all: dead-letter at connector.parse, answer 400."""


class Ignored(Exception):
    """A well-formed event that is not a finished response: answer 200, produce nothing."""


class SourceUnavailable(Exception):
    """The tool's API could not complete the event (down, rate limited, not configured): answer 503.

    ``retry_after`` is what the answer's Retry-After says (the API's own wait when it gave one).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ParseContext:
    brand: str
    identity: Identity
    query: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- signatures


def same_signature(a: str, b: str) -> bool:
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


def check_signature_header(headers: Mapping[str, str], header: str, expected: str) -> None:
    """The one-header schemes (a keyed hash of the body in ``header``): missing or different -> SignatureError."""
    given = headers.get(header)
    if not given:
        raise SignatureError(f"{header} header is missing")
    if not same_signature(given, expected):
        raise SignatureError(f"{header} does not match the body")


def verify_typeform(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    check_signature_header(headers, "Typeform-Signature", sign_typeform(body, secret))


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
    if not any(same_signature(candidate, expected) for candidate in given.split()):
        raise SignatureError("webhook-signature does not match the body")


def verify_generic(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    given = headers.get("X-Touchpoint-Signature")
    if not given:
        raise SignatureError("X-Touchpoint-Signature header is missing")
    timestamp = _check_age(headers.get("X-Touchpoint-Timestamp"), now, tolerance_s)
    if not same_signature(given, sign_generic(timestamp, body, secret)):
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


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidSignal(f"{what} must be a JSON object (got {type(value).__name__})")
    return value


def join_text(parts: list[str]) -> str | None:
    joined = "\n".join(p.strip() for p in parts if p and p.strip())
    return joined or None


# ---------------------------------------------------------------- Typeform

# Typeform's documented defaults when a field's definition leaves out its properties (Create API:
# opinion_scale 11 steps from 0 unless start_at_one; rating 5 steps from 1); an nps field is always 0-10.
_TYPEFORM_SCORE_TYPES = ("nps", "opinion_scale", "rating")


def _typeform_scale(kind: str, field: Mapping[str, Any], query: Mapping[str, str]) -> tuple[int, int] | None:
    """The real scale of a score field, or None for a field that is not a score (a free number).

    Webhook definitions usually leave out a field's ``properties``; then the
    URL can say the scale (``?scales=REF:1-5,REF2:0-10``), else Typeform's
    defaults apply.
    """
    props = field.get("properties") or {}
    keys = {str(field[k]) for k in ("ref", "id") if field.get(k)}
    for item in str(query.get("scales") or "").split(","):
        ref, _, span = item.strip().partition(":")
        low, _, high = span.partition("-")
        if ref in keys and low.strip().isdigit() and high.strip().isdigit():
            return int(low), int(high)
    if kind == "nps":
        return 0, 10
    if kind == "rating":
        return 1, int(props.get("steps") or 5)
    if kind == "opinion_scale":
        start = 1 if props.get("start_at_one") else 0
        return start, start + int(props.get("steps") or 11) - 1
    return None


def named_refs(options: Mapping[str, Any], name: str) -> set[str]:
    """Question ids/refs named for ``name`` by a webhook URL (``?comment=a,b``) or connector params (a list)."""
    value = options.get(name) or ""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return {str(ref).strip() for ref in items if str(ref).strip()}


def _typeform_score(
    keys: set[str], kind: str, field: Mapping[str, Any], value: Any, query: Mapping[str, str]
) -> Score | None:
    """A score when the field is one (nps, opinion_scale, rating) or the URL names it; else None.

    A named field keeps the metric's standard scale and must be on it (a 0-10
    opinion scale named as CES is refused, not squeezed); an unnamed one is a
    ``rating`` on its own real scale.
    """
    scale = _typeform_scale(kind, field, query)
    named = next((metric for metric in ("nps", "csat", "ces") if keys & named_refs(query, metric)), None)
    if named is not None:
        standard = SCORE_SCALES[named]
        if scale is not None and scale != standard:
            raise InvalidSignal(
                f"field {field.get('ref') or field.get('id')!r} is a {scale[0]}-{scale[1]} {kind},"
                f" not on the {named} scale {standard[0]}-{standard[1]};"
                " leave it unnamed (it is then a rating on its own scale)"
            )
        return scored(named, value)
    if scale is None:
        return None  # a free number (an age, a quantity) is not a score
    if kind == "nps":
        return scored("nps", value)
    return scored("rating", value, scale[1], scale[0])


def parse_typeform(payload: Any, ctx: ParseContext) -> RawSignal:
    """A Typeform ``form_response`` (developer.typeform.com/webhooks/example-payload) as a RawSignal.

    Score: only answers to score fields (``nps`` 0-10, ``opinion_scale`` and
    ``rating`` on their real scale, ``?scales=REF:1-5`` where the definition
    leaves it out) or to fields the URL names
    (``?nps=REF&csat=REF&ces=REF``); the first named metric wins, else the
    nps field, else the first score field; the others are kept as
    ``score.REF`` attributes. Comment: the fields the URL names
    (``?comment=REF,REF``), else every ``long_text`` answer; short answers,
    names, dates and choices never. Email and phone answers and identifier
    hidden fields become ``customer_id``.
    """
    payload = require_dict(payload, "the Typeform payload")
    if payload.get("event_type") != "form_response":
        raise Ignored(f"event_type {payload.get('event_type')!r} is not form_response")
    response = require_dict(payload.get("form_response"), "form_response")
    token = response.get("token")
    if not token:
        raise InvalidSignal("form_response.token is missing; it identifies the response")
    definition = require_dict(response.get("definition") or {}, "form_response.definition")
    fields = {f.get("id"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    identifiers, attributes = split_identifiers(require_dict(response.get("hidden") or {}, "hidden"))
    touchpoint = attributes.pop("touchpoint", None)
    comment_refs = named_refs(ctx.query, "comment")
    scores: list[tuple[str, Score]] = []
    texts: list[str] = []
    for answer in response.get("answers") or []:
        if not isinstance(answer, dict):
            raise InvalidSignal("every entry of form_response.answers must be an object")
        given = require_dict(answer.get("field") or {}, "answer.field")
        field = {**fields.get(given.get("id"), {}), **given}
        keys = {str(field[k]) for k in ("ref", "id") if field.get(k)}
        kind, value = str(field.get("type") or ""), answer.get(str(answer.get("type")))
        if answer.get("type") == "number":
            score = _typeform_score(keys, kind, field, value, ctx.query)
            if score is not None:
                scores.append((str(field.get("ref") or field.get("id") or kind), score))
        elif answer.get("type") == "text" and isinstance(value, str):
            if (keys & comment_refs) if comment_refs else kind == "long_text":
                texts.append(value)
        elif answer.get("type") == "email" and value:
            identifiers.setdefault("email", str(value))
        elif answer.get("type") == "phone_number" and value:
            identifiers.setdefault("phone", str(value))
    chosen = _primary_score([score for _, score in scores])
    for key, score in scores:
        if score is not chosen:
            attributes[f"score.{key}"] = f"{score.metric} {score.value:g} ({score.scale_min}-{score.scale_max})"
    attributes.update(form_id=str(response.get("form_id") or definition.get("id") or ""), form_title=str(definition.get("title") or ""))
    return RawSignal(
        source="typeform", source_id=str(token), channel="survey", brand=ctx.brand,
        occurred_at=parse_timestamp(response.get("submitted_at"), "form_response.submitted_at"),
        text=join_text(texts), score=chosen, customer_id=ctx.identity.resolve(identifiers), touchpoint_hint=touchpoint,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


def _primary_score(scores: list[Score]) -> Score | None:
    """The response's score: NPS, then CSAT, then CES, then the first rating."""
    for metric in ("nps", "csat", "ces", "rating"):
        for score in scores:
            if score.metric == metric:
                return score
    return None


# ---------------------------------------------------------------- Formbricks

_NOT_COMMENTS = {"clicked", "accepted", "dismissed", "skipped"}


def parse_formbricks(payload: Any, ctx: ParseContext) -> RawSignal:
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    payload = require_dict(payload, "the Formbricks payload")
    if payload.get("event") != "responseFinished":
        raise Ignored(f"event {payload.get('event')!r} is not responseFinished")
    response = require_dict(payload.get("data"), "data")
    if not response.get("id"):
        raise InvalidSignal("data.id is missing; it identifies the response")
    answers = require_dict(response.get("data") or {}, "data.data")
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
        text=join_text(texts), score=score, customer_id=ctx.identity.resolve(found),
        url=(meta.get("url") if isinstance(meta, dict) else None) or None,
        attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- generic


def parse_generic(payload: Any, ctx: ParseContext) -> RawSignal:
    payload = require_dict(payload, "the payload")
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
    customer = require_dict(payload.get("customer") or {}, "customer")
    found, _ = split_identifiers(customer)
    attributes = require_dict(payload.get("attributes") or {}, "attributes")
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
Decoder = Callable[[bytes], Any]
# For tools whose events carry ids only: (decoded event, context, the tool's API client or None) -> what parse reads.
Fetcher = Callable[[Any, ParseContext, "HttpClient | None"], Awaitable[Any]]
# The tool's API for the receiver: (base URL, auth headers) from settings, or None when not configured.
ApiSpec = Callable[["Settings"], "tuple[str, dict[str, str]] | None"]


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedPayload(f"body is not JSON: {exc}") from exc


@dataclass(frozen=True)
class SurveyTool:
    """How one tool's webhooks are checked, decoded, completed from its API and mapped."""

    name: str
    secret_setting: str  # the Settings field holding its secret
    verify: Verifier
    parse: Parser
    decode: Decoder = decode_json
    fetch: Fetcher | None = None
    api: ApiSpec | None = None
    secret: Callable[["Settings"], str | None] | None = None  # when the key is built from several settings
    secret_env: str = ""  # what to set, when it is not TOUCHPOINT_<SECRET_SETTING>
    signing_optional: bool = False  # the tool may send unsigned events (the content is then fetched from its API)

    def secret_of(self, settings: "Settings") -> str | None:
        return self.secret(settings) if self.secret else getattr(settings, self.secret_setting)

    @property
    def secret_hint(self) -> str:
        return self.secret_env or f"TOUCHPOINT_{self.secret_setting.upper()}"


TYPEFORM = SurveyTool("typeform", "typeform_webhook_secret", verify_typeform, parse_typeform)
FORMBRICKS = SurveyTool("formbricks", "formbricks_webhook_secret", verify_standard, parse_formbricks)
GENERIC = SurveyTool("generic", "generic_webhook_secret", verify_generic, parse_generic)
