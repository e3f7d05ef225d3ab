"""Announcing a new case to HTTP destinations: a Slack-compatible message, or signed generic JSON.

Delivery is never fire-and-forget. Each (action, destination) is POSTed until
the destination answers 2xx, with the same ``Idempotency-Key`` (the action id)
on every attempt so a receiver can drop repeats:

1. 5xx, 408, 425 and transport errors are retried with exponential backoff;
   429 (or any retried answer carrying ``Retry-After``) waits what the destination
   asked, in seconds or as an HTTP date (core/httppolicy.py decides, by table);
2. a destination's own rate limit (``rate_per_minute`` in the rules file)
   spaces requests, so a burst of cases never exceeds it;
3. other 4xx, 3xx, a wait longer than ``delivery_max_retry_after_s``, or
   ``delivery_max_attempts`` / ``delivery_max_elapsed_s`` used up: the delivery
   *failed*; the caller records that and dead-letters the action with the reason.

The case agent holds its batch's offsets until every delivery has an outcome
recorded in ClickHouse (pipeline/actions.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from urllib.parse import quote

import aiohttp

from touchpoint.core import metrics
from touchpoint.core.httppolicy import Action, RateLimiter, classify_exception, classify_status, parse_retry_after
from touchpoint.core.retry import backoff_delay
from touchpoint.core.settings import Settings
from touchpoint.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_generic
from touchpoint.pipeline.jsonable import to_json
from touchpoint.pipeline.rules import RulesError, RuleSet

log = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Touchpoint-Event"
CASE_OPENED = "case.opened"
SLACK_TEXT_LIMIT = 2900  # Slack's section text takes up to 3000 characters
HINTS: dict[int, str] = {
    400: "the destination refused the message; check its type (slack or webhook) in the rules file",
    401: "the destination refused our credentials; check the URL's token or the HMAC secret",
    403: "the destination refused; for Slack, the webhook may be revoked: create a new one",
    404: "no such webhook; check the destination's URL (TOUCHPOINT_ROUTING_DESTINATION_URLS)",
    410: "the webhook is gone (for Slack: the channel was archived); configure a new URL",
}


class DeliveryFailed(Exception):
    """A destination refused a case for good, or did not accept it in time (the reason says which)."""


@dataclass(frozen=True)
class Endpoint:
    """A destination from the rules file with its URL and secret resolved from settings."""

    name: str
    kind: str  # slack | webhook
    url: str
    secret: str | None
    rate_per_s: float | None
    timeout_s: float


def endpoints(rules: RuleSet, settings: Settings) -> dict[str, Endpoint]:
    """Every destination of ``rules``, ready to call; raises :class:`RulesError` naming what to set."""
    found, problems = {}, []
    for name, spec in rules.spec.destinations.items():
        url = settings.routing_destination_urls.get(name) or spec.url
        secret = settings.routing_destination_secrets.get(name)
        if not url:
            problems.append(
                f"destination {name!r} has no URL: set TOUCHPOINT_ROUTING_DESTINATION_URLS='{{\"{name}\": \"https://...\"}}' "
                "(or url: in the rules file when it is not a secret)"
            )
        elif not url.startswith(("http://", "https://")):
            problems.append(f"destination {name!r}: URL must start with http:// or https://")
        if spec.type == "webhook" and not secret:
            problems.append(
                f"destination {name!r} is a signed webhook without a secret: set "
                f"TOUCHPOINT_ROUTING_DESTINATION_SECRETS='{{\"{name}\": \"...\"}}'"
            )
        rate = spec.rate_per_minute / 60 if spec.rate_per_minute else None
        found[name] = Endpoint(name, spec.type, url or "", secret, rate, spec.timeout_s)
    if problems:
        raise RulesError(f"{rules.origin}: " + f"\n{rules.origin}: ".join(problems))
    return found


# ---------------------------------------------------------------- the messages


def journey_url(settings: Settings, customer_id: str | None) -> str | None:
    """The customer's journey in the worker's API, when the customer is known."""
    if not customer_id:
        return None
    return f"{settings.api_public_url.rstrip('/')}/api/v1/journey/{quote(customer_id, safe='')}"


def _utc(stamp: datetime | None) -> datetime | None:
    return None if stamp is None else (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc))


def due_at(action: Mapping[str, Any]) -> datetime:
    return _utc(action["created_at"]) + timedelta(seconds=int(action["sla_seconds"]))


def scores_line(action: Mapping[str, Any]) -> str:
    """'NPS 2 · sentiment negative (-0.87)': what the customer gave and how they sounded."""
    parts = []
    score = action.get("score")
    if score:
        parts.append(f"{str(score['metric']).upper()} {score['value']:g}")
    if action.get("sentiment_label"):
        value = action.get("sentiment_score")
        parts.append(f"sentiment {action['sentiment_label']}" + (f" ({value:+.2f})" if value is not None else ""))
    if action.get("emotions"):
        parts.append(", ".join(action["emotions"]))
    return " · ".join(parts) or "no score"


def _slack_escape(text: str) -> str:
    """Slack mrkdwn needs &, < and > escaped (its "formatting text" rules)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(action: Mapping[str, Any], case_id: str, settings: Settings) -> dict[str, Any]:
    """A Slack incoming-webhook payload (``text`` fallback plus Block Kit ``blocks``), as Slack's
    "Sending messages using incoming webhooks" guide shapes it; Mattermost and Rocket.Chat accept it too."""
    title = f"New {action['priority']} case for {action['team']}: {action['touchpoint']}"
    due = due_at(action).strftime("%Y-%m-%d %H:%M UTC")
    verbatim = _slack_escape((action.get("summary") or "(no text)")[:SLACK_TEXT_LIMIT])
    fields = [
        ("Touchpoint", action["touchpoint"]), ("Team", action["team"]), ("Priority", action["priority"]),
        ("SLA", f"due {due}"), ("Scores", scores_line(action)),
        ("Channel", " / ".join(str(v) for v in (action.get("channel"), action.get("source")) if v) or action["origin"]),
    ]  # fmt: skip
    links = [f"case `{case_id}`", f"rule `{action['rule']}`"]
    journey = journey_url(settings, action.get("customer_id"))
    if journey:
        links.insert(0, f"<{journey}|Customer journey>")
    if action.get("url"):
        links.insert(1 if journey else 0, f"<{action['url']}|Original>")
    return {
        "text": f"{title} ({scores_line(action)})",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(str(v))}"} for k, v in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "> " + verbatim.replace("\n", "\n> ")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]},
        ],
    }


def webhook_body(action: Mapping[str, Any], case_id: str, settings: Settings) -> dict[str, Any]:
    """The generic JSON event: the case, the redacted verbatim, scores, and the journey link."""
    return to_json({
        "type": CASE_OPENED, "case_id": case_id, "action_id": action["action_id"], "origin": action["origin"],
        "origin_id": action["origin_id"], "rule": action["rule"], "team": action["team"],
        "priority": action["priority"], "touchpoint": action["touchpoint"], "journey_stage": action.get("journey_stage"),
        "brand": action["brand"], "customer_id": action.get("customer_id"), "subject": action["subject"],
        "opened_at": _utc(action["created_at"]), "due_at": due_at(action), "sla_seconds": action["sla_seconds"],
        "channel": action.get("channel"), "source": action.get("source"), "occurred_at": _utc(action.get("occurred_at")),
        "verbatim": action.get("summary"), "score": action.get("score"),
        "sentiment": {"label": action.get("sentiment_label"), "score": action.get("sentiment_score")},
        "emotions": list(action.get("emotions") or []), "language": action.get("language"), "url": action.get("url"),
        "journey_url": journey_url(settings, action.get("customer_id")), "attributes": dict(action.get("attributes") or {}),
    })  # fmt: skip


def request_for(endpoint: Endpoint, action: Mapping[str, Any], case_id: str, settings: Settings) -> tuple[bytes, dict[str, str]]:
    """The body and headers (signature added per attempt, see :func:`signed`)."""
    payload = slack_message(action, case_id, settings) if endpoint.kind == "slack" else webhook_body(action, case_id, settings)
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: action["action_id"], EVENT_HEADER: CASE_OPENED}
    return json.dumps(payload, ensure_ascii=False).encode(), headers


def signed(endpoint: Endpoint, body: bytes, headers: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """Headers with a fresh timestamp and HMAC for signed webhooks (each attempt re-signs, so a
    receiver's tolerance on timestamps holds however long the retries took)."""
    if endpoint.kind != "webhook" or not endpoint.secret:
        return dict(headers)
    stamp = str(int(now if now is not None else time.time()))
    return {**headers, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign_generic(stamp, body, endpoint.secret)}


# ---------------------------------------------------------------- sending


@dataclass(frozen=True)
class Outcome:
    destination: str
    delivered: bool
    attempts: int
    http_status: int | None
    reason: str | None


class Deliverer:
    """Sends with the policy of the module docstring; one rate limiter per destination for the process
    (a limiter is a pace, not state: after a restart the first request simply goes at once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._limiters: dict[tuple[str, float | None], RateLimiter] = {}

    def limiter(self, endpoint: Endpoint) -> RateLimiter:
        key = (endpoint.name, endpoint.rate_per_s)
        if key not in self._limiters:
            self._limiters[key] = RateLimiter(endpoint.rate_per_s)
        return self._limiters[key]

    async def deliver(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, action: Mapping[str, Any], case_id: str
    ) -> Outcome:
        """POST until a 2xx or a reason to stop (module docstring); never raises for HTTP trouble."""
        s = self.settings
        body, headers = request_for(endpoint, action, case_id, s)
        started = time.monotonic()
        status: int | None = None
        for attempt in range(1, s.delivery_max_attempts + 1):
            await self.limiter(endpoint).acquire()
            status, answer, wait, problem = await self._attempt(session, endpoint, body, headers)
            action_kind = classify_status(status) if status is not None else classify_exception(problem)
            if action_kind is Action.OK:
                metrics.DELIVERIES.labels("delivered").inc()
                return Outcome(endpoint.name, True, attempt, status, None)
            what = f"answered {status}" if status is not None else f"failed: {problem!r}"
            if action_kind is Action.FAIL:
                hint = HINTS.get(status or 0, "see the answer")
                return self._failed(endpoint, attempt, status, f"{what}, a permanent failure: {hint} ({answer!r})")
            if wait is None:
                wait = backoff_delay(attempt, s.delivery_retry_initial_s, s.delivery_retry_max_s)
            elif wait > s.delivery_max_retry_after_s:
                return self._failed(
                    endpoint, attempt, status,
                    f"{what} and asked to wait {wait:.0f}s, over TOUCHPOINT_DELIVERY_MAX_RETRY_AFTER_S ({s.delivery_max_retry_after_s:.0f}s)",
                )  # fmt: skip
            if attempt == s.delivery_max_attempts or time.monotonic() - started + wait > s.delivery_max_elapsed_s:
                break
            log.info("delivery to %s %s; attempt %d again in %.1fs", endpoint.name, what, attempt + 1, wait)
            metrics.DELIVERY_RETRIES.inc()
            await asyncio.sleep(wait)
        last = f"last answer {status}" if status is not None else "no answer"
        return self._failed(endpoint, attempt, status, f"gave up after {attempt} attempts in {time.monotonic() - started:.0f}s ({last})")

    @staticmethod
    async def _attempt(
        session: aiohttp.ClientSession, endpoint: Endpoint, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str, float | None, BaseException | None]:
        """One POST: (status, start of the answer, Retry-After seconds, transport error)."""
        try:
            async with session.post(
                endpoint.url, data=body, headers=signed(endpoint, body, headers),
                timeout=aiohttp.ClientTimeout(total=endpoint.timeout_s), allow_redirects=False,
            ) as response:  # fmt: skip
                answer = (await response.read())[:200].decode("utf-8", "replace")
                return response.status, answer, parse_retry_after(response.headers.get("Retry-After")), None
        except Exception as exc:  # classified by the caller: transport trouble retries, the rest fails
            return None, "", None, exc

    @staticmethod
    def _failed(endpoint: Endpoint, attempts: int, status: int | None, reason: str) -> Outcome:
        metrics.DELIVERIES.labels("failed").inc()
        log.error("delivery to %s failed: %s", endpoint.name, reason)
        return Outcome(endpoint.name, False, attempts, status, f"destination {endpoint.name!r} {reason}")
