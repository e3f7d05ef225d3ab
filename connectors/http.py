"""HTTP for polling connectors: retries, rate limits and pagination in one place.

What a response means is decided by tables, not if-chains (the Airbyte
``default_error_mapping`` idea): :data:`STATUS_ACTIONS` / :data:`CLASS_ACTIONS`
map an HTTP status to OK / RETRY / RATE_LIMITED / FAIL, and
:data:`EXCEPTION_ACTIONS` maps transport errors. RETRY backs off
exponentially with jitter; RATE_LIMITED waits what the source asked for
(``Retry-After`` in seconds or as an HTTP date, or a reset header) and, when
that is longer than the policy allows, raises :class:`RateLimited` carrying
``retry_after`` so the runner can sleep and poll again. FAIL raises
:class:`HttpFailure` with a message that names the fix.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Mapping

import aiohttp

from touchpoint.core import metrics
from touchpoint.core.httppolicy import (  # noqa: F401  (re-exported: connectors import them from here)
    CLASS_ACTIONS,
    EXCEPTION_ACTIONS,
    STATUS_ACTIONS,
    Action,
    RateLimiter,
    classify_exception,
    classify_status,
    parse_retry_after,
)
from touchpoint.core.retry import backoff_delay

# Hints for common failures, so the error says what to do.
STATUS_HINTS: dict[int, str] = {
    400: "the source rejected the request; check the connector's params",
    401: "check the token: set the env var named by token_env to a valid credential",
    403: "the credential lacks access to this resource; check its scopes",
    404: "the path does not exist; check base_url and the connector's params",
}


class HttpFailure(Exception):
    """A request that will not succeed by retrying (or ran out of attempts)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RateLimited(Exception):
    """The source asked us to wait longer than this call may; poll again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, url: str = "") -> None:
        super().__init__(f"rate limited by {url or 'the source'}; retry after {retry_after:.1f}s")
        self.retry_after = retry_after
        self.url = url


def _epoch_reset(value: str | None) -> float | None:
    try:
        return max(0.0, float(value) - time.time()) if value else None  # type: ignore[arg-type]
    except ValueError:
        return None


_UNIX_TIME_ABOVE = 1e9  # no window lasts 30 years: a larger reset value is a point in time


def _seconds(value: str | None) -> float | None:
    """Seconds until the window resets (Reddit), or, when the value is a Unix time (Intercom), until then."""
    try:
        number = float(value) if value else None  # type: ignore[arg-type]
    except ValueError:
        return None
    if number is None:
        return None
    return max(0.0, number - time.time()) if number > _UNIX_TIME_ABOVE else max(0.0, number)


# Which header says how long to wait, and how to read it; the first one present wins.
RATE_LIMIT_HEADERS: tuple[tuple[str, Callable[[str | None], float | None]], ...] = (
    ("Retry-After", parse_retry_after),
    ("x-rate-limit-reset", _epoch_reset),  # X API v2: Unix time the window resets
    ("x-ratelimit-reset", _seconds),  # Reddit: seconds until the window resets; Intercom: Unix time
)


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    for name, read in RATE_LIMIT_HEADERS:
        wait = read(headers.get(name))
        if wait is not None:
            return wait
    return None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0  # longer waits end the pass with RateLimited
    timeout_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff_initial_s, self.backoff_max_s)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpFailure(f"{self.url} did not return JSON ({exc}); check base_url", url=self.url) from exc


class HttpClient:
    """``async with HttpClient(base_url, name=...) as http: await http.get_json("/path", params)``."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        headers: Mapping[str, str] | None = None,
        rate_per_s: float | None = None,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.headers = dict(headers or {})
        self.policy = policy
        self.limiter = RateLimiter(rate_per_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "HttpClient":
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    async def get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> HttpResponse:
        """GET with the retry/rate-limit tables applied; returns only a 2xx response."""
        return await self.request("GET", path_or_url, params)

    async def post_json(self, path_or_url: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body (search and export-start endpoints: safe to repeat) and return the JSON answer."""
        return (await self.request("POST", path_or_url, params, json_body=body)).json()

    async def request(
        self, method: str, path_or_url: str, params: Mapping[str, Any] | None = None, *, json_body: Any = None
    ) -> HttpResponse:
        """One request with the retry/rate-limit tables applied; returns only a 2xx response.

        Retried requests must be safe to repeat: GETs, and the POSTs sources
        use for searches and export starts (a repeated export start only
        starts a second export; nothing is lost or doubled downstream).
        """
        if self._session is None:
            raise RuntimeError("use `async with HttpClient(...)` before making requests")
        url = self.url_for(path_or_url)
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        for attempt in range(1, self.policy.max_attempts + 1):
            await self._wait_for_budget()
            try:
                async with self._session.request(method, url, params=query, json=json_body) as resp:
                    body = await resp.read()
                    response = HttpResponse(resp.status, str(resp.url), resp.headers, body)
            except Exception as exc:  # classified below; unknown errors fail
                self._count(None)
                if classify_exception(exc) is not Action.RETRY or attempt == self.policy.max_attempts:
                    raise HttpFailure(f"{method} {url} failed: {exc!r}", url=url) from exc
                await asyncio.sleep(self.policy.backoff(attempt))
                continue
            self._count(response.status)
            action = classify_status(response.status)
            if action is Action.OK:
                return response
            last = attempt == self.policy.max_attempts
            if action is Action.RATE_LIMITED:
                wait = retry_after_of(response.headers)
                wait = self.policy.backoff(attempt) if wait is None else wait
                if last or wait > self.policy.max_retry_after_s:
                    raise RateLimited(wait, url)
                await self._rate_limit_sleep(wait * random.uniform(1.0, 1.1))  # never earlier than asked
            elif action is Action.RETRY and not last:
                await asyncio.sleep(self.policy.backoff(attempt))
            else:
                hint = STATUS_HINTS.get(response.status, "see the response body")
                snippet = response.body[:200].decode("utf-8", "replace")
                raise HttpFailure(
                    f"{method} {url} answered {response.status} after {attempt} attempt(s): {hint} ({snippet!r})",
                    status=response.status, url=url,
                )  # fmt: skip
        raise AssertionError("unreachable: the loop returns or raises")

    async def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.get(path_or_url, params)).json()

    async def _wait_for_budget(self) -> None:
        waited = await self.limiter.acquire()
        if waited:
            metrics.CONNECTOR_RATE_LIMIT_WAITS.labels(self.name).inc()
            metrics.CONNECTOR_RATE_LIMIT_WAIT_SECONDS.labels(self.name).inc(waited)

    async def _rate_limit_sleep(self, seconds: float) -> None:
        metrics.CONNECTOR_RATE_LIMIT_WAITS.labels(self.name).inc()
        metrics.CONNECTOR_RATE_LIMIT_WAIT_SECONDS.labels(self.name).inc(seconds)
        await asyncio.sleep(seconds)

    def _count(self, status: int | None) -> None:
        metrics.CONNECTOR_HTTP_REQUESTS.labels(self.name, metrics.status_class(status)).inc()


# --- pagination --------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a source: its body, the token that fetched it, the token of the next one."""

    body: Any
    token: str | None
    next_token: str | None


async def token_pages(
    http: HttpClient,
    path: str,
    *,
    params: Mapping[str, Any],
    token_param: str,
    next_token_of: Callable[[Any], str | None],
    start: str | None = None,
) -> AsyncIterator[Page]:
    """Pages chained by a token the previous page returns (``next_token``, ``pageToken``, ``after``)."""
    token = start
    while True:
        body = await http.get_json(path, {**params, token_param: token})
        following = next_token_of(body) or None
        yield Page(body, token, following)
        if following is None:
            return
        token = following


async def numbered_pages(
    http: HttpClient,
    path_for: Callable[[int], str],
    *,
    is_empty: Callable[[Any], bool],
    last: int,
    start: str | None = None,
) -> AsyncIterator[Page]:
    """Pages addressed by number (1..last); ends at ``last`` or at the first empty page."""
    number = int(start or 1)
    while number <= last:
        body = await http.get_json(path_for(number))
        empty = is_empty(body)
        following = None if empty or number == last else str(number + 1)
        yield Page(body, str(number), following)
        if following is None:
            return
        number += 1


async def link_pages(
    http: HttpClient,
    url: str,
    *,
    parse: Callable[[bytes], Any],
    next_url_of: Callable[[Any], str | None],
    start: str | None = None,
) -> AsyncIterator[Page]:
    """Pages chained by a full "next" URL in the body (RFC 5005 feed paging, HAL links).

    ``parse`` runs in a worker thread (feed parsing is CPU work; the loop stays free).
    """
    current = start or url
    while True:
        response = await http.get(current)
        body = await asyncio.to_thread(parse, response.body)
        following = next_url_of(body) or None
        yield Page(body, None if current == url else current, following)
        if following is None:
            return
        current = following
