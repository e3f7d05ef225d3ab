"""The survey webhook receiver: an aiohttp app that turns signed survey webhooks into raw signals.

``POST /webhooks/{tool}`` with tool one of :data:`TOOLS` (typeform,
formbricks, generic, surveymonkey, qualtrics, delighted, intercom). For each
request, in this order:

1. Body over ``webhook_max_body_bytes`` -> 413 (aiohttp's ``client_max_size``).
2. Signature (and, where the tool signs one, timestamp age) checked on the raw
   bytes -> 401 when missing, wrong or stale. A tool with no secret configured
   is refused with 401 too, unless ``webhook_allow_unsigned`` is set or the
   tool signs only optionally (Qualtrics: its events carry ids, and the
   response itself is fetched from its API with our token).
3. A body the tool's decoder cannot read (not JSON; Qualtrics: not a form with
   a JSON ``MSG``) -> dead letter (stage ``connector.parse``) then 400.
4. Tools whose events carry ids only (SurveyMonkey, Qualtrics; Intercom when
   an access token is set) fetch the response from the tool's API, without
   blocking the loop; that API down, rate limiting or refusing the token ->
   503 + ``Retry-After`` so the sender retries; answering 404 -> 422.
5. A payload that is not a valid response -> dead letter
   (``connector.validate``) then 422. Events that are not finished responses
   -> 200 ``ignored``.
6. The signal is produced to ``signals.raw`` (acks=all, keyed by the
   pseudonymous customer id) and the answer waits for the broker's
   acknowledgement: 200 ``{"signal_id": ...}`` only once Kafka has it.
   No acknowledgement within ``webhook_ack_timeout_s`` -> 503 with
   ``Retry-After``: nothing is lost as long as the sender retries, and a retry
   is harmless (the signal_id is deterministic).

Retries, per tool: Typeform re-delivers on 5xx/timeouts and gives up on 4xx, so
4xx answers are kept for payloads a retry cannot fix. Formbricks posts once
with a 5 s timeout and never retries, so keep ``webhook_ack_timeout_s`` under
5 s for it and watch the 503 count. Generic senders should retry 5xx and 429.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import web

from touchpoint.connectors import delighted, intercom, qualtrics, surveymonkey
from touchpoint.connectors.http import HttpClient, HttpFailure, RateLimited, RetryPolicy
from touchpoint.connectors.producer import SignalProducer
from touchpoint.connectors.surveys import (
    FORMBRICKS,
    GENERIC,
    TYPEFORM,
    Ignored,
    MalformedPayload,
    ParseContext,
    SignatureError,
    SourceUnavailable,
    SurveyTool,
)  # fmt: skip
from touchpoint.core.identity import Identity
from touchpoint.core.metrics import WEBHOOK_REQUESTS, add_metrics_route, status_class
from touchpoint.core.settings import Settings
from touchpoint.schemas.signal import InvalidSignal

log = logging.getLogger(__name__)
RETRY_AFTER_S = 30
# Every tool the receiver knows, by the name in its URL (POST /webhooks/{name}).
TOOLS: dict[str, SurveyTool] = {
    tool.name: tool
    for tool in (TYPEFORM, FORMBRICKS, GENERIC, surveymonkey.WEBHOOK, qualtrics.WEBHOOK, delighted.WEBHOOK, intercom.WEBHOOK)
}


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time: answer 503 so the sender retries."""


def _answer(http_status: int, /, retry_after: float = RETRY_AFTER_S, **body: Any) -> web.Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if http_status == 503 else None
    return web.json_response(body, status=http_status, headers=headers)


class SourceApis:
    """One HttpClient per tool API the receiver calls, opened on first use, closed with the app.

    Short retries only (the sender is waiting): a source that stays down or
    rate-limits becomes a 503 the sender retries later.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, HttpClient] = {}

    async def client(self, tool: SurveyTool) -> HttpClient | None:
        spec = tool.api(self.settings) if tool.api is not None else None
        if spec is None:
            return None
        if tool.name not in self._clients:
            base_url, headers = spec
            policy = RetryPolicy(max_attempts=2, backoff_initial_s=0.2, max_retry_after_s=0.0,
                                 timeout_s=self.settings.webhook_ack_timeout_s)  # fmt: skip
            client = HttpClient(base_url, name=f"webhook-{tool.name}", headers=headers, policy=policy)
            self._clients[tool.name] = await client.__aenter__()
        return self._clients[tool.name]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.__aexit__(None, None, None)
        self._clients.clear()


class WebhookReceiver:
    """Request handling for one app; owns no producer lifecycle (the caller starts and stops it)."""

    def __init__(self, settings: Settings, producer: SignalProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.identity = Identity.from_settings(settings)
        self.apis = SourceApis(settings)
        self.counts: dict[str, int] = {"accepted": 0, "ignored": 0, "unauthorized": 0, "dead_lettered": 0, "unavailable": 0}

    async def _acked(self, send: Any) -> None:
        """Await the send and the broker's acknowledgement, within the configured timeout."""
        try:
            future = await asyncio.wait_for(send, self.settings.webhook_ack_timeout_s)
            await asyncio.wait_for(asyncio.shield(future), self.settings.webhook_ack_timeout_s)
        except InvalidSignal:
            raise
        except Exception as exc:  # timeouts and every KafkaError mean the same to the sender: retry
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}: {exc}") from exc

    async def _dead_letter(self, tool: str, stage: str, reason: str, body: bytes, error: BaseException) -> None:
        await self._acked(self.producer.send_dead_letter(stage, reason, body, error, origin=f"tool:{tool}", source=tool))
        self.counts["dead_lettered"] += 1

    def _check_signature(self, tool_name: str, body: bytes, request: web.Request) -> str | None:
        """None when the request may pass, else the reason it may not."""
        tool = TOOLS[tool_name]
        secret = tool.secret_of(self.settings)
        if not secret:
            if self.settings.webhook_allow_unsigned or tool.signing_optional:
                return None
            env = tool.secret_hint
            return f"no secret is configured for {tool_name}: set {env} (or TOUCHPOINT_WEBHOOK_ALLOW_UNSIGNED=true to trial unsigned)"
        try:
            tool.verify(body, request.headers, secret, time.time(), self.settings.webhook_tolerance_s)
        except SignatureError as exc:
            return str(exc)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        tool_name = request.match_info["tool"]
        if tool_name not in TOOLS:
            return _answer(404, error=f"unknown survey tool {tool_name!r}; known: {', '.join(TOOLS)}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.settings.webhook_max_body_bytes
            return _answer(413, error=f"body over {limit} bytes; raise TOUCHPOINT_WEBHOOK_MAX_BODY_BYTES if real")
        refusal = self._check_signature(tool_name, body, request)
        if refusal:
            self.counts["unauthorized"] += 1
            log.warning("webhook %s refused: %s", tool_name, refusal)
            return _answer(401, error=refusal)
        try:
            return await self._accept(tool_name, body, request)
        except (BrokerUnavailable, SourceUnavailable) as exc:
            self.counts["unavailable"] += 1
            log.warning("webhook %s: %s", tool_name, exc)
            wait = getattr(exc, "retry_after", None)
            return _answer(503, RETRY_AFTER_S if wait is None else wait, error=str(exc))

    async def _accept(self, tool_name: str, body: bytes, request: web.Request) -> web.Response:
        tool = TOOLS[tool_name]
        try:
            payload = tool.decode(body)
        except MalformedPayload as exc:
            await self._dead_letter(tool_name, "connector.parse", str(exc), body, exc)
            return _answer(400, error=str(exc), dead_lettered=True)
        context = ParseContext(
            brand=self.settings.webhook_brand, identity=self.identity, query=dict(request.query),
        )  # fmt: skip
        try:
            if tool.fetch is not None:
                payload = await self._fetch(tool, payload, context)
            signal = self._parse(tool_name, payload, context)
            await self._acked(self.producer.send(signal))
        except Ignored as exc:
            self.counts["ignored"] += 1
            return _answer(200, ignored=str(exc))
        except InvalidSignal as exc:
            await self._dead_letter(tool_name, "connector.validate", str(exc), body, exc)
            return _answer(422, error=str(exc), dead_lettered=True)
        self.counts["accepted"] += 1
        return _answer(200, signal_id=signal.signal_id)

    async def _fetch(self, tool: SurveyTool, payload: Any, context: ParseContext) -> Any:
        """Complete an ids-only event from the tool's API (``tool.fetch``).

        The API unreachable, failing, rate limiting or refusing our credential
        is a 503 (fix or wait, the sender retries); an API that answers 404
        has no such response, which no retry fixes: 422 and a dead letter.
        """
        assert tool.fetch is not None
        try:
            return await tool.fetch(payload, context, await self.apis.client(tool))
        except RateLimited as exc:
            raise SourceUnavailable(f"{tool.name} API rate-limited the fetch: {exc}", exc.retry_after) from exc
        except HttpFailure as exc:
            if exc.status == 404:
                raise InvalidSignal(f"{tool.name} API has no such response: {exc}") from exc
            raise SourceUnavailable(f"{tool.name} API did not answer the fetch: {exc}") from exc
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, InvalidSignal):
                raise
            raise InvalidSignal(f"unexpected {tool.name} event shape: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _parse(tool_name: str, payload: Any, context: ParseContext) -> Any:
        """The tool's parser; a shape it did not foresee is an invalid payload (422), never a 500."""
        try:
            return TOOLS[tool_name].parse(payload, context)
        except (InvalidSignal, Ignored):
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidSignal(f"unexpected {tool_name} payload shape: {type(exc).__name__}: {exc}") from exc

    async def health(self, request: web.Request) -> web.Response:
        return _answer(200, status="ok", tools=sorted(TOOLS), **self.counts)

    async def probe(self, request: web.Request) -> web.Response:
        """GET/HEAD on a tool's URL: SurveyMonkey checks it with HEAD when the webhook is created, Qualtrics with GET."""
        tool = request.match_info["tool"]
        if tool not in TOOLS:
            return _answer(404, error=f"unknown survey tool {tool!r}; known: {', '.join(TOOLS)}")
        return _answer(200, tool=tool, accepts="POST")


RECEIVER: "web.AppKey[WebhookReceiver]" = web.AppKey("receiver", WebhookReceiver)


@web.middleware
async def count_deliveries(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """touchpoint_webhook_requests_total by tool and status class (unknown tools share one label)."""
    response = await handler(request)
    if request.method == "POST" and request.path.startswith("/webhooks/"):
        tool = request.match_info.get("tool", "")
        WEBHOOK_REQUESTS.labels(tool if tool in TOOLS else "unknown", status_class(response.status)).inc()
    return response


def create_webhook_app(settings: Settings, producer: SignalProducer) -> web.Application:
    """The receiver as an aiohttp app (plus /metrics); ``producer`` must already be started."""
    app = web.Application(client_max_size=settings.webhook_max_body_bytes, middlewares=[count_deliveries])
    receiver = WebhookReceiver(settings, producer)
    app[RECEIVER] = receiver

    async def close_apis(_: web.Application) -> None:
        await receiver.apis.close()

    app.on_cleanup.append(close_apis)
    app.router.add_post("/webhooks/{tool}", receiver.handle)
    app.router.add_get("/webhooks/{tool}", receiver.probe)  # aiohttp answers HEAD from GET routes too
    app.router.add_get("/webhooks", receiver.health)
    add_metrics_route(app)
    return app


@asynccontextmanager
async def serving_webhooks(settings: Settings, producer: SignalProducer) -> AsyncIterator[str]:
    """The receiver listening on webhook_host:webhook_port for the block; yields its base URL.

    On exit it stops taking new requests and lets in-flight ones finish, so a
    sender never gets a 2xx for a signal Kafka did not acknowledge.
    """
    runner = web.AppRunner(create_webhook_app(settings, producer), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    try:
        yield f"http://{settings.webhook_host}:{settings.webhook_port}/webhooks"
    finally:
        await runner.cleanup()
