"""Qualtrics survey responses: event subscriptions and a backfill through the response export.

A response (``GET /API/v3/surveys/{surveyId}/responses/{responseId}`` answers
``{"result": response}``; a JSON export holds ``{"responses": [response]}``)
is ``{"responseId", "values": {...}, "labels": {...}, "displayedFields",
"displayedValues"}``; ``values`` holds the metadata (``recordedDate``,
``endDate``, ``distributionChannel``, ``userLanguage``, ``recipientEmail``,
``externalDataReference``, ...) and the answers by question id: ``QID9`` (the
choice's recode value), ``QID9_NPS_GROUP`` next to a Net Promoter question,
``QID24_TEXT`` for text entry.

Mapping (:func:`response_to_signal`): a question with a ``_NPS_GROUP``
companion is NPS 0-10; questions named ``nps``/``csat``/``ces`` (webhook URL
``?csat=QID5``, connector params ``csat_questions``) take that metric on its
standard scale; the comment is the text of the questions named ``comment``
(``?comment=QID24``; a response carries no question types, so free text that
is not named is never guessed at: it could be a name). ``recipientEmail``,
``externalDataReference`` (the brand's own id) and identifier embedded data
become ``customer_id``; names, IP addresses and locations are never kept.

Event subscription (``POST /webhooks/qualtrics``): Qualtrics posts a form,
``Topic=BRAND.surveyengine.completedResponse.SV_x&MSG={"Status", "SurveyID",
"ResponseID", "CompletedDate", "BrandID", ...}`` and, when the subscription
has a ``sharedKey``, ``HMAC`` = HEX(HMAC-SHA512(sharedKey, MSG)). The HMAC is
checked when ``TOUCHPOINT_QUALTRICS_SHARED_KEY`` is set; without it events
are accepted, because only ids come in: the response itself is fetched from
the Responses API with our token, so a forged event can only make us read a
real response. Other topics are answered 200 and skipped.

Backfill (``qualtrics_export``): the response-export API in three steps,
each a checkpoint so a restart resumes at the step it stopped in: start
(``POST .../export-responses`` with ``format: json`` and
``allowContinuation``), poll progress (``GET .../export-responses/{progressId}``
until ``status: complete`` gives a ``fileId`` and a ``continuationToken``),
download (``GET .../export-responses/{fileId}/file``, a zip holding the JSON
file; checkpointed every ``checkpoint_every`` responses). The next pass
exports only what came since, with the ``continuationToken``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import zipfile
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping
from urllib.parse import parse_qs

from touchpoint.connectors.framework import Connector, SourceRecord
from touchpoint.connectors.surveys import (
    Ignored,
    MalformedPayload,
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
from touchpoint.schemas.signal import InvalidSignal, RawSignal, Score

if TYPE_CHECKING:
    from touchpoint.connectors.http import HttpClient
    from touchpoint.core.settings import Settings

NPS_GROUP = "_NPS_GROUP"
# Response metadata Qualtrics adds to every response: never identifiers by key, never attributes (names, IPs, places).
METADATA = frozenset({
    "startDate", "endDate", "status", "ipAddress", "progress", "duration", "finished", "recordedDate", "_recordId",
    "locationLatitude", "locationLongitude", "distributionChannel", "userLanguage", "recipientEmail",
    "recipientFirstName", "recipientLastName", "externalDataReference",
})  # fmt: skip


def _scores(values: Mapping[str, Any], options: Mapping[str, Any]) -> list[tuple[str, Score]]:
    named = {m: named_refs(options, m) | named_refs(options, f"{m}_questions") for m in ("nps", "csat", "ces")}
    found = [(qid, "nps") for qid in sorted(named["nps"])]
    found += [(qid, m) for m in ("csat", "ces") for qid in sorted(named[m])]
    found += [(key[: -len(NPS_GROUP)], "nps") for key in values if key.endswith(NPS_GROUP)]
    scores: list[tuple[str, Score]] = []
    for qid, metric in dict.fromkeys(found):
        if values.get(qid) not in (None, "") and qid not in {q for q, _ in scores}:
            scores.append((qid, scored(metric, values[qid])))
    return scores


def response_to_signal(
    response: Any, survey_id: str, options: Mapping[str, Any], *, brand: str, identity: Identity
) -> RawSignal:
    """A Qualtrics response as a RawSignal (module docstring)."""
    response = require_dict(response, "the response")
    values = require_dict(response.get("values") or {}, "values")
    scores = _scores(values, options)
    chosen = next((s for m in ("nps", "csat", "ces") for _, s in scores if s.metric == m), None)
    comments = sorted(named_refs(options, "comment") | named_refs(options, "comment_questions"))
    texts = [str(values.get(f"{qid}_TEXT", values.get(qid)) or "") for qid in comments]
    embedded = {k: v for k, v in values.items() if k not in METADATA and not k.startswith("QID")}
    found, extra = split_identifiers(embedded)
    found.setdefault("email", values.get("recipientEmail") or "")
    found.setdefault("account", values.get("externalDataReference") or "")
    attributes = {"survey_id": survey_id, "distribution_channel": str(values.get("distributionChannel") or ""),
                  "language": str(values.get("userLanguage") or "")}  # fmt: skip
    for qid, score in scores:
        if score is not chosen:
            attributes[f"score.{qid}"] = f"{score.metric} {score.value:g}"
    return RawSignal(
        source="qualtrics", source_id=str(response["responseId"]), channel="survey", brand=brand,
        occurred_at=parse_timestamp(values.get("recordedDate") or values.get("endDate"), "values.recordedDate"),
        text=join_text(texts), score=chosen, customer_id=identity.resolve({k: v for k, v in found.items() if v}),
        touchpoint_hint=extra.get("touchpoint") or None, attributes={k: v for k, v in attributes.items() if v},
    )  # fmt: skip


# ---------------------------------------------------------------- event subscription


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"body is not a form (Topic=...&MSG=...): {exc}") from exc
    return {name: items[0] for name, items in fields.items()}


def sign_qualtrics(msg: str, shared_key: str) -> str:
    return hmac.new(shared_key.encode(), msg.encode(), hashlib.sha512).hexdigest()


def verify_qualtrics(body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance_s: float) -> None:
    try:
        form = _form(body)
    except MalformedPayload as exc:
        raise SignatureError(str(exc)) from exc
    given, msg = form.get("HMAC"), form.get("MSG")
    if not given or msg is None:
        raise SignatureError("the HMAC or MSG form field is missing (the subscription's sharedKey signs MSG)")
    if not same_signature(given.lower(), sign_qualtrics(msg, secret)):
        raise SignatureError("HMAC does not match MSG")


def decode_qualtrics(body: bytes) -> dict[str, Any]:
    form = _form(body)
    if "Topic" not in form or "MSG" not in form:
        raise MalformedPayload(f"the Topic and MSG form fields are missing (got {sorted(form)})")
    try:
        return {"topic": form["Topic"], "msg": json.loads(form["MSG"])}
    except ValueError as exc:
        raise MalformedPayload(f"MSG is not JSON: {exc}") from exc


async def fetch_qualtrics(event: Any, ctx: ParseContext, http: "HttpClient | None") -> dict[str, Any]:
    """A completedResponse event carries ids: fetch the response from the Responses API."""
    if ".completedResponse." not in str(event.get("topic")):
        raise Ignored(f"topic {event.get('topic')!r} is not a completedResponse")
    msg = require_dict(event.get("msg"), "MSG")
    survey_id, response_id = msg.get("SurveyID"), msg.get("ResponseID")
    if not survey_id or not response_id:
        raise InvalidSignal("MSG needs SurveyID and ResponseID to fetch the response")
    if http is None:
        raise SourceUnavailable("set TOUCHPOINT_QUALTRICS_BASE_URL and TOUCHPOINT_QUALTRICS_API_TOKEN to fetch responses")
    answer = await http.get_json(f"/API/v3/surveys/{survey_id}/responses/{response_id}")
    return {"survey_id": survey_id, "response": require_dict(answer, "the answer").get("result")}


def parse_qualtrics(payload: Any, ctx: ParseContext) -> RawSignal:
    return response_to_signal(payload["response"], payload["survey_id"], ctx.query, brand=ctx.brand, identity=ctx.identity)


def _api(settings: "Settings") -> tuple[str, dict[str, str]] | None:
    if not settings.qualtrics_base_url or not settings.qualtrics_api_token:
        return None
    return settings.qualtrics_base_url, {"X-API-TOKEN": settings.qualtrics_api_token}


WEBHOOK = SurveyTool(
    "qualtrics", "qualtrics_shared_key", verify_qualtrics, parse_qualtrics, decode=decode_qualtrics,
    fetch=fetch_qualtrics, api=_api, signing_optional=True,
)  # fmt: skip


# ---------------------------------------------------------------- export backfill


def read_export(body: bytes) -> list[Any]:
    """The responses of a JSON response export (a zip holding one ``.json`` file)."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".json"))
            document = json.loads(archive.read(name))
    except (zipfile.BadZipFile, StopIteration, ValueError) as exc:
        raise ValueError(f"the export file is not a zip holding a JSON export ({exc!r}); was format json?") from exc
    responses = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(responses, list):
        raise ValueError("the export's JSON has no `responses` list")
    return responses


class ExportFailed(Exception):
    """Qualtrics reports the export as failed: the pass ends, the next poll starts a new export."""


class QualtricsExport(Connector):
    """A survey's responses through the response-export API (module docstring).

    Cursor, by step: ``{"progress_id"}`` (export started), ``{"file_id",
    "next", "offset"}`` (file ready, ``offset`` responses sent), ``{"continuation"}``
    (pass finished). params: ``survey_id`` (required), ``since`` (first pass:
    ``startDate``, ISO 8601), ``nps_questions`` / ``csat_questions`` /
    ``ces_questions`` / ``comment_questions`` (question ids),
    ``poll_every_s`` (default 2), ``checkpoint_every`` (default 500).
    base_url: the data center, e.g. ``https://iad1.qualtrics.com``;
    token_env: an API token (sent as ``X-API-TOKEN``).
    """

    name = "qualtrics_export"
    source = "qualtrics"
    channel = "survey"
    cursor_field = "continuationToken"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"X-API-TOKEN": token}

    @property
    def _exports(self) -> str:
        return f"/API/v3/surveys/{self.required_param('survey_id', 'the survey to export')}/export-responses"

    async def records(self, cursor: Cursor | None) -> AsyncIterator[SourceRecord]:  # type: ignore[override]  # an async generator
        state = dict(cursor or {})
        if not state.get("file_id"):
            progress_id = state.get("progress_id")
            if not progress_id:
                progress_id = await self._start(state.get("continuation"))
                yield SourceRecord.checkpoint({"progress_id": progress_id, "continuation": state.get("continuation")})
            result = await self._wait_for(progress_id)
            if result.get("status") != "complete":
                yield SourceRecord.checkpoint({"continuation": state.get("continuation")})  # the next poll starts over
                raise ExportFailed(f"Qualtrics export {progress_id} ended {result.get('status')!r}; the next poll starts a new one")
            file_id, following = str(result["fileId"]), result.get("continuationToken")
            state = {"file_id": file_id, "next": following, "offset": 0, "continuation": state.get("continuation")}
            yield SourceRecord.checkpoint(state)
        self.report("downloading the export")
        responses = await asyncio.to_thread(read_export, (await self.http.get(f"{self._exports}/{state['file_id']}/file")).body)
        every = int(self.params.get("checkpoint_every", 500))
        for position in range(int(state.get("offset") or 0), len(responses)):
            yield SourceRecord(responses[position])
            self.report("sending responses", position + 1, len(responses))
            if (position + 1) % every == 0:
                yield SourceRecord.checkpoint({**state, "offset": position + 1})
        yield SourceRecord.checkpoint({"continuation": state.get("next") or state.get("continuation")})

    async def _start(self, continuation: str | None) -> str:
        body: dict[str, Any] = {"format": "json"}
        if continuation:
            body["continuationToken"] = continuation
        else:
            body["allowContinuation"] = True
            if self.params.get("since"):
                body["startDate"] = parse_timestamp(self.params["since"], "params.since").strftime("%Y-%m-%dT%H:%M:%SZ")
        self.report("starting the export")
        return str((await self.http.post_json(self._exports, body))["result"]["progressId"])

    async def _wait_for(self, progress_id: str) -> dict[str, Any]:
        """Poll the export's progress until it is complete (``fileId``, ``continuationToken``) or failed."""
        while True:
            result = require_dict((await self.http.get_json(f"{self._exports}/{progress_id}")).get("result"), "result")
            self.report("exporting", float(result.get("percentComplete") or 0), 100.0)
            if result.get("status") in ("complete", "failed"):
                return result
            await asyncio.sleep(float(self.params.get("poll_every_s", 2)))

    def to_signal(self, item: dict[str, Any]) -> RawSignal:
        survey_id = str(self.params.get("survey_id"))
        return response_to_signal(item, survey_id, self.params, brand=self.brand, identity=self.identity)
