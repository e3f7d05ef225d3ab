"""The closed loop over HTTP, on the worker's web server beside the metric API (pipeline/api.py):

    GET  /api/v1/cases?status=&team=&priority=&touchpoint=&brand=&customer_id=&breached=&limit=
    GET  /api/v1/cases/{case_id}                 history, attached signals, deliveries
    POST /api/v1/cases/{case_id}/acknowledge     {"by": "ana", "owner": "ana"}
    POST /api/v1/cases/{case_id}/close           {"by": "ana", "note": "refunded and apologised"}
    POST /api/v1/cases/{case_id}/reopen          {"by": "lead"}
    GET  /api/v1/loop?since=&until=&brand=       open cases, SLA breaches, medians, close-the-loop rate

Moves are the ones pipeline/cases.py allows; asking for the state a case is
already in answers 200 with ``changed: false`` (a retried request is harmless);
a move the case's state does not allow answers 409 naming the states it needs.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from aiohttp import web

from touchpoint.core.settings import Settings
from touchpoint.pipeline.api import (
    PREFIX,
    BadRequest,
    _allowed,
    _bool,
    _int,
    _param,
    _text,
    filters_json,
    guarded,
    json_response,
    parse_filters,
)
from touchpoint.pipeline.cases import (
    CASE_FILTERS,
    TRANSITIONS,
    CaseNotFound,
    TransitionRefused,
    case_detail,
    list_cases,
    transition,
)
from touchpoint.pipeline.loop_metrics import loop_summary
from touchpoint.pipeline.store import AsyncStore
from touchpoint.schemas.action import CASE_STATUSES, PRIORITIES

MAX_BODY_TEXT = 2000


class CaseApi:
    """Handlers; parameters are checked with the metric API's helpers, and its guard answers errors."""

    def __init__(self, store: AsyncStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def list(self, request: web.Request) -> web.Response:
        query = request.query
        _allowed(query, (*CASE_FILTERS, "breached", "limit"))
        filters = {name: _text(query, name) for name in CASE_FILTERS}
        if filters["status"] and filters["status"] not in CASE_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(CASE_STATUSES)}", "status")
        if filters["priority"] and filters["priority"] not in PRIORITIES:
            raise BadRequest(f"priority must be one of {', '.join(PRIORITIES)}", "priority")
        breached = _bool(query, "breached") if "breached" in query else None
        limit = _int(query, "limit", 100, 1, 1000)
        rows = await self.store.call(list_cases, filters, breached, limit)
        return json_response({"filters": {**filters, "breached": breached}, "n": len(rows), "cases": rows})

    async def detail(self, request: web.Request) -> web.Response:
        _allowed(request.query, ())
        try:
            case = await self.store.call(case_detail, self._case_id(request))
        except CaseNotFound as exc:
            return json_response({"error": str(exc)}, status=404)
        return json_response({"case": case})

    async def move(self, request: web.Request) -> web.Response:
        name = request.match_info["transition"]
        if name not in TRANSITIONS:
            raise BadRequest(f"unknown transition {name!r}; POST to {', '.join(TRANSITIONS)}", "transition")
        body = await self._body(request)
        actor = self._field(body, "by", required=True)
        owner = self._field(body, "owner")
        note = self._field(body, "note", required=name == "close")
        try:
            case_id = self._case_id(request)
            case, changed = await self.store.call(
                lambda store: transition(store, case_id, name, actor, owner=owner, note=note)
            )
        except CaseNotFound as exc:
            return json_response({"error": str(exc)}, status=404)
        except TransitionRefused as exc:
            return json_response({"error": str(exc)}, status=409)
        return json_response({"case": case, "changed": changed})

    async def loop(self, request: web.Request) -> web.Response:
        query = request.query
        _allowed(query, ("since", "until", "brand"))
        filters = parse_filters(query)
        summary = await self.store.call(loop_summary, filters, self.settings.min_responses)
        return json_response(
            {"filters": filters_json(filters), "min_responses": self.settings.min_responses,
             "definitions": LOOP_DEFINITIONS, **summary}
        )  # fmt: skip

    def _case_id(self, request: web.Request) -> str:
        case_id = request.match_info["case_id"]
        if len(case_id) > 100:
            raise BadRequest("case_id is longer than 100 characters", "case_id")
        return case_id

    async def _body(self, request: web.Request) -> Mapping[str, Any]:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise BadRequest('the body must be JSON, e.g. {"by": "ana", "note": "called back"}', "body") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object", "body")
        unknown = sorted(set(body) - {"by", "owner", "note"})
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(unknown)}; allowed: by, owner, note", unknown[0])
        return body

    def _field(self, body: Mapping[str, Any], name: str, required: bool = False) -> str | None:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string", name)
        value = (value or "").strip()
        if required and not value:
            what = {"by": "who does it (a name or email)", "note": "the resolution: what was done for the customer"}
            raise BadRequest(f"{name} is required: {what.get(name, name)}", name)
        if len(value) > MAX_BODY_TEXT:
            raise BadRequest(f"{name} is longer than {MAX_BODY_TEXT} characters", name)
        return value or None


LOOP_DEFINITIONS = {
    "open_now": "cases open or acknowledged now; breached: past their SLA due time",
    "n": "cases routed (opened) in the period; every other number rests on it",
    "sla_breaches": "cases closed after their due time, or still open past it",
    "median_ack_s": "median seconds from opening to the first acknowledgement",
    "median_close_s": "median seconds from opening to closing",
    "close_rate": "close-the-loop rate: % of routed cases closed within their SLA",
}


def add_case_routes(router: web.UrlDispatcher, store: AsyncStore, settings: Settings) -> None:
    api = CaseApi(store, settings)
    router.add_get(f"{PREFIX}/cases", guarded(api.list))
    router.add_get(f"{PREFIX}/cases/{{case_id}}", guarded(api.detail))
    router.add_post(f"{PREFIX}/cases/{{case_id}}/{{transition}}", guarded(api.move))
    router.add_get(f"{PREFIX}/loop", guarded(api.loop))


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def case_paths(filters: list[dict[str, Any]], error: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI paths for the routes above (pipeline/api.py merges them into its document)."""
    prefix, param, ok = PREFIX, _param, _ok
    case_id = param("case_id", "path", {"type": "string"}, "the case's id", True)
    move_body = {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["by"], "additionalProperties": False,
            "properties": {"by": {"type": "string", "description": "who does it"},
                           "owner": {"type": "string", "description": "acknowledge: who owns it (default: by)"},
                           "note": {"type": "string", "description": "close: the resolution (required)"}},
        }}},
    }  # fmt: skip
    moved = ok("the case now; changed=false when it already was in that state", {"type": "object"})
    conflict = {"description": "the case's state does not allow this move", "content": error["content"]}
    return {
        f"{prefix}/cases": {"get": {
            "summary": "Cases, newest first, with their signals count and whether they breached their SLA",
            "parameters": [
                param("status", "query", {"type": "string", "enum": list(CASE_STATUSES)}, "only this status"),
                *[param(n, "query", {"type": "string"}, f"only this {n}") for n in CASE_FILTERS if n not in ("status", "priority")],
                param("priority", "query", {"type": "string", "enum": list(PRIORITIES)}, "only this priority"),
                param("breached", "query", {"type": "boolean"}, "only cases that breached (true) or did not (false) their SLA"),
                param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "most cases returned"),
            ],
            "responses": {"200": ok("cases", {"type": "object"}), "400": error},
        }},
        f"{prefix}/cases/{{case_id}}": {"get": {
            "summary": "One case with its history, attached signals and deliveries",
            "parameters": [case_id], "responses": {"200": ok("the case", {"type": "object"}), "404": {"description": "no such case"}},
        }},
        **{
            f"{prefix}/cases/{{case_id}}/{name}": {"post": {
                "summary": f"{name.capitalize()} a case (from {' or '.join(t.starts_from)} to {t.to})",
                "parameters": [case_id], "requestBody": move_body,
                "responses": {"200": moved, "400": error, "404": {"description": "no such case"}, "409": conflict},
            }}
            for name, t in TRANSITIONS.items()
        },
        f"{prefix}/loop": {"get": {
            "summary": "How well the loop closes: open cases and breaches now; over cases opened in the period, "
                       "SLA breaches, median time to acknowledge and close, close-the-loop rate (by team and priority, "
                       "by team and touchpoint)",
            "parameters": [f for f in filters if f["name"] in ("since", "until", "brand")],
            "responses": {"200": ok("loop metrics, each row with n", {"type": "object"}), "400": error},
        }},
    }  # fmt: skip
