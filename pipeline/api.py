"""The metric API: JSON over HTTP on the worker's web server (Faust serves aiohttp).

    GET /api/v1/metrics/{metric}?by=&since=&until=&brand=&channel=&compare=&view=
    GET /api/v1/top-negative?since=&until=&brand=&channel=&limit=&verbatims=
    GET /api/v1/journey/{customer_id}?limit=
    GET /api/v1/alerts?state=open|all&since=&brand=&limit=
    GET /api/v1/openapi.json
    /api/v1/cases..., /api/v1/loop: the closed loop (pipeline/cases_api.py)

Every parameter is checked here and bound in ClickHouse (pipeline/queries.py),
never pasted into SQL; a bad one gets a 400 whose JSON says what is accepted.
Store calls run on the store's own thread (AsyncStore), so the event loop that
also runs the Faust agents never blocks on ClickHouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from touchpoint.core.settings import Settings
from touchpoint.core.times import parse_time_expression
from touchpoint.pipeline.alerts.ledger import recent_alerts
from touchpoint.pipeline.jsonable import to_json
from touchpoint.pipeline.metrics_sql import DIMENSIONS, METRICS, VIEWS, view_of
from touchpoint.pipeline.queries import TIME_DIMS, Filters, journey, metric_rows, top_negative
from touchpoint.pipeline.readers import READERS, decode, encode, run_reader
from touchpoint.pipeline.store import AsyncStore
from touchpoint.pipeline.store_errors import StoreAction, StoreError

PREFIX = "/api/v1"
FILTER_PARAMS = ("since", "until", "brand", "channel")
MAX_TEXT_PARAM = 200


class BadRequest(ValueError):
    """A parameter the API cannot accept; the message says what it accepts."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(to_json(body)), status=status, content_type="application/json")


def _allowed(query: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for name in query:
        if name not in allowed:
            raise BadRequest(f"unknown parameter {name!r}; allowed: {', '.join(allowed)}", name)


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT_PARAM:
        raise BadRequest(f"{name} is longer than {MAX_TEXT_PARAM} characters", name)
    return value


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from {low} to {high} (got {raw!r})", name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high} (got {value})", name)
    return value


def _bool(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false (got {raw!r})", name)
    return raw in ("true", "1")


def _view(query: Mapping[str, str], by: str) -> str | None:
    """view=primary|mentions, only with by=touchpoint; None: the metric's default."""
    view = query.get("view") or None
    if view is not None and view not in VIEWS:
        raise BadRequest(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}", "view")
    if view is not None and by != "touchpoint":
        raise BadRequest("view applies only with by=touchpoint", "view")
    return view


def parse_filters(query: Mapping[str, str]) -> Filters:
    """since/until (date, time or span like 7d), brand, channel; until must follow since."""
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        raw = _text(query, name)
        try:
            times[name] = parse_time_expression(raw) if raw else None
        except ValueError as exc:
            raise BadRequest(f"{name}: {exc}", name) from None
    since, until = times["since"], times["until"]
    if since and until and until <= since:
        raise BadRequest("until must be after since", "until")
    return Filters(since, until, _text(query, "brand"), _text(query, "channel"))


def filters_json(filters: Filters) -> dict[str, Any]:
    return {"since": filters.since, "until": filters.until, "brand": filters.brand, "channel": filters.channel}


@dataclass
class MetricApi:
    """Handlers for the routes above; one instance per web server."""

    store: AsyncStore
    settings: Settings

    async def metrics(self, request: web.Request) -> web.Response:
        query = request.query
        metric = request.match_info["metric"]
        _allowed(query, ("by", *FILTER_PARAMS, "compare", "view"))
        if metric not in METRICS:
            raise BadRequest(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}", "metric")
        by = query.get("by", "total")
        if by not in DIMENSIONS:
            raise BadRequest(f"unknown dimension by={by!r}; choose one of {', '.join(DIMENSIONS)}", "by")
        filters = parse_filters(query)
        compare = _bool(query, "compare")
        if compare and by in TIME_DIMS:
            raise BadRequest("compare=true needs a dimension other than day or week", "compare")
        if compare and filters.since is None:
            raise BadRequest("compare=true needs since (the current period's start, e.g. since=7d)", "since")
        view = _view(query, by)
        min_n = self.settings.min_responses
        rows = await self.store.call(metric_rows, metric, (by,), filters, min_n, compare, view)
        shown = view_of(metric, view) if by == "touchpoint" else None
        return json_response(
            {"metric": metric, "by": by, "filters": filters_json(filters), "min_responses": min_n,
             "definition": METRICS[metric].description, "view": shown, "view_definition": VIEWS.get(shown or ""),
             "rows": rows}
        )  # fmt: skip

    async def top_negative(self, request: web.Request) -> web.Response:
        query = request.query
        _allowed(query, (*FILTER_PARAMS, "limit", "verbatims"))
        filters = parse_filters(query)
        limit = _int(query, "limit", 5, 1, 50)
        verbatims = _int(query, "verbatims", 3, 0, 10)
        min_n = self.settings.min_responses
        rows = await self.store.call(top_negative, filters, min_n, limit, verbatims)
        return json_response({"filters": filters_json(filters), "min_responses": min_n, "rows": rows})

    async def journey(self, request: web.Request) -> web.Response:
        query = request.query
        _allowed(query, ("limit",))
        customer_id = request.match_info["customer_id"]
        if len(customer_id) > MAX_TEXT_PARAM:
            raise BadRequest(f"customer_id is longer than {MAX_TEXT_PARAM} characters", "customer_id")
        limit = _int(query, "limit", 1000, 1, 10000)
        rows = await self.store.call(journey, customer_id, limit)
        if not rows:
            return json_response({"error": f"no signals for customer_id {customer_id!r}"}, status=404)
        return json_response({"customer_id": customer_id, "n": len(rows), "signals": rows})

    async def read(self, request: web.Request) -> web.Response:
        """Run one read-only question of pipeline/readers.py here, for a command that cannot open the store."""
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body must be JSON: {\"reader\": NAME, \"args\": [...], \"kwargs\": {...}}") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object with reader, args and kwargs")
        name = body.get("reader")
        if not isinstance(name, str) or name not in READERS:
            return json_response({"error": f"unknown reader {name!r}; known: {', '.join(READERS)}"}, status=404)
        args, kwargs = decode(body.get("args") or []), decode(body.get("kwargs") or {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise BadRequest("args must be a list and kwargs an object")
        try:
            result = await self.store.call(run_reader, name, args, kwargs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadRequest(f"bad arguments for {name}: {type(exc).__name__}: {exc}") from exc
        return web.json_response({"result": encode(result)})

    async def alerts(self, request: web.Request) -> web.Response:
        """Open alerts first, then recent ones, each with its numbers, n and explanation."""
        query = request.query
        _allowed(query, ("state", "since", "brand", "limit"))
        state = query.get("state", "all")
        if state not in ("open", "all"):
            raise BadRequest(f"state must be open or all (got {state!r})", "state")
        since = parse_filters({k: v for k, v in query.items() if k == "since"}).since
        limit = _int(query, "limit", 50, 1, 500)
        rows = await self.store.call(recent_alerts, since, _text(query, "brand"), limit)
        shown = [a.as_json() for a in rows if state == "all" or a.state == "open"]
        return json_response({"state": state, "since": since, "alerts": shown})

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi_document())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(handler: Handler) -> Handler:
    """Bad parameters become 400s, a failing store a 503, both as JSON."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return json_response({"error": str(exc), "parameter": exc.parameter}, status=400)
        except StoreError as exc:
            if exc.action is StoreAction.BAD_ROWS:  # the values the client sent do not fit: its request is at fault
                return json_response({"error": f"ClickHouse refused a parameter: {exc}"}, status=400)
            return json_response({"error": f"store unavailable, retry later: {exc}", "fix": exc.hint}, status=503)

    return run


def add_routes(router: web.UrlDispatcher, api: MetricApi) -> None:
    """Mount the API on an aiohttp router (Faust's web app or a standalone one)."""
    router.add_get(f"{PREFIX}/metrics/{{metric}}", guarded(api.metrics))
    router.add_get(f"{PREFIX}/top-negative", guarded(api.top_negative))
    router.add_get(f"{PREFIX}/journey/{{customer_id}}", guarded(api.journey))
    router.add_get(f"{PREFIX}/alerts", guarded(api.alerts))
    router.add_get(f"{PREFIX}/openapi.json", guarded(api.openapi))
    router.add_post(f"{PREFIX}/read", guarded(api.read))
    from touchpoint.pipeline.cases_api import add_case_routes  # imports this module: imported late

    add_case_routes(router, api.store, api.settings)  # /cases..., /loop


def register_api(app: Any, store: AsyncStore, settings: Settings) -> None:
    """Add the API to a Faust app's web server (served when ``web_enabled`` is on)."""
    add_routes(app.web.web_app.router, MetricApi(store, settings))


def build_web_app(store: AsyncStore, settings: Settings) -> web.Application:
    """A standalone aiohttp app with the same routes (for `touchpoint up`-style servers and tests)."""
    application = web.Application()
    add_routes(application.router, MetricApi(store, settings))
    return application


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.0 description of the routes above."""
    from touchpoint.pipeline.cases_api import case_paths  # imports this module: imported late

    when = "an ISO date (2026-11-01), time (2026-11-01T09:30Z) or a span back from now (24h, 7d, 4w)"
    filters = [
        _param("since", "query", {"type": "string"}, f"start, inclusive: {when}"),
        _param("until", "query", {"type": "string"}, f"end, exclusive: {when}; default now"),
        _param("brand", "query", {"type": "string", "maxLength": MAX_TEXT_PARAM}, "only this brand"),
        _param("channel", "query", {"type": "string", "maxLength": MAX_TEXT_PARAM}, "only this channel"),
    ]
    error = {"description": "bad parameter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    row = {
        "type": "object",
        "description": "the dimension's value under its name, the metric under its name, n and low_confidence",
        "properties": {
            "n": {"type": "integer", "description": "the count the number rests on"},
            "low_confidence": {"type": "boolean", "description": "n is below the configured minimum"},
            "previous": {"type": "number", "nullable": True, "description": "with compare=true"},
            "previous_n": {"type": "integer", "description": "with compare=true"},
            "change": {"type": "number", "nullable": True, "description": "with compare=true"},
            "view": {"type": "string", "enum": list(VIEWS), "description": "by touchpoint: how signals were attributed (primary or mentions)"},
        },
        "additionalProperties": True,
    }

    def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    rows = {"type": "object", "properties": {"rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}}}}
    metric_answer = {"type": "object", "properties": {
        **rows["properties"], "definition": {"type": "string", "description": "what the metric and its n count"},
        "view": {"type": "string", "enum": list(VIEWS), "nullable": True, "description": "by=touchpoint: the attribution used; null otherwise"},
        "view_definition": {"type": "string", "nullable": True, "description": "what that view counts"},
    }}  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {"title": "Touchpoint metric API", "version": "1", "description": "CX metrics computed in ClickHouse; every number carries n."},
        "paths": {
            f"{PREFIX}/metrics/{{metric}}": {
                "get": {
                    "summary": "A CX metric grouped by one dimension",
                    "parameters": [
                        _param("metric", "path", {"type": "string", "enum": list(METRICS)}, "; ".join(f"{m.name}: {m.description}" for m in METRICS.values()), True),
                        _param("by", "query", {"type": "string", "enum": list(DIMENSIONS), "default": "total"}, "dimension to group by"),
                        *filters,
                        _param("compare", "query", {"type": "boolean", "default": False}, "add change versus the previous period of the same length (needs since)"),
                        _param("view", "query", {"type": "string", "enum": list(VIEWS)},
                               "with by=touchpoint only: " + "; ".join(f"{k}: {v}" for k, v in VIEWS.items())
                               + ". Default: primary for nps, csat and ces, mentions for sentiment, emotions and volume; "
                               "the answer's `view` (and each row's) says which was used"),
                    ],
                    "responses": {"200": ok("one row per dimension value", metric_answer), "400": error},
                }
            },
            f"{PREFIX}/top-negative": {
                "get": {
                    "summary": "Touchpoints with the worst net sentiment, with representative redacted verbatims",
                    "parameters": [
                        *filters,
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}, "how many touchpoints"),
                        _param("verbatims", "query", {"type": "integer", "minimum": 0, "maximum": 10, "default": 3}, "verbatims per touchpoint"),
                    ],
                    "responses": {"200": ok("worst first", rows), "400": error},
                }
            },
            f"{PREFIX}/journey/{{customer_id}}": {
                "get": {
                    "summary": "Every signal of one customer across channels, oldest first",
                    "parameters": [
                        _param("customer_id", "path", {"type": "string"}, "the pseudonymous customer id", True),
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}, "most signals returned"),
                    ],
                    "responses": {
                        "200": ok("the journey", {"type": "object", "properties": {"n": {"type": "integer"}, "signals": {"type": "array", "items": {"type": "object"}}}}),
                        "400": error,
                        "404": {"description": "no signals for this customer"},
                    },
                }
            },
            f"{PREFIX}/alerts": {
                "get": {
                    "summary": "Alerts on drops and spikes: open first, then recent, each with its numbers, n and why",
                    "parameters": [
                        _param("state", "query", {"type": "string", "enum": ["open", "all"], "default": "all"}, "only open alerts, or all"),
                        _param("since", "query", {"type": "string"}, f"also alerts updated since: {when}"),
                        _param("brand", "query", {"type": "string", "maxLength": MAX_TEXT_PARAM}, "only this brand"),
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "most alerts returned"),
                    ],
                    "responses": {"200": ok("alerts", {"type": "object", "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}), "400": error},
                }
            },
            f"{PREFIX}/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3 document"}}}},
            f"{PREFIX}/read": {
                "post": {
                    "summary": "One read-only question of pipeline/readers.py, for a command that cannot open the store itself",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["reader"],
                        "properties": {"reader": {"type": "string", "enum": list(READERS)},
                                       "args": {"type": "array"}, "kwargs": {"type": "object"}},
                    }}}},
                    "responses": {"200": ok("the answer, values tagged so times and filters come back as sent",
                                            {"type": "object", "properties": {"result": {}}}),
                                  "400": error, "404": error, "503": error},
                }
            },
            **case_paths(filters, error),
        },
        "components": {
            "schemas": {
                "Row": row,
                "Alert": {
                    "type": "object",
                    "description": "series (brand, dimension, value), metric, window, current and expected values with 95% intervals, n, z, p and the explanation",
                    "properties": {
                        "alert_id": {"type": "string"}, "state": {"type": "string", "enum": ["open", "resolved"]},
                        "brand": {"type": "string"}, "dimension": {"type": "string", "enum": ["brand", "channel", "touchpoint"]},
                        "value": {"type": "string"}, "metric": {"type": "string"}, "direction": {"type": "string", "enum": ["up", "down"]},
                        "current": {"type": "number"}, "expected": {"type": "number"}, "n": {"type": "integer"},
                        "baseline_n": {"type": "integer"}, "score": {"type": "number"}, "p_value": {"type": "number"},
                        "summary": {"type": "string"},
                        "explanation": {"type": "object", "description": "terms (weighted log-odds z), verbatims, contributions by channel and source, window"},
                    },
                    "additionalProperties": True,
                },
                "Error": {"type": "object", "properties": {"error": {"type": "string"}, "parameter": {"type": "string", "nullable": True}}},
            }
        },
    }  # fmt: skip
