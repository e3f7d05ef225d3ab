"""What an HTTP answer means, for every outbound HTTP client (connectors polling sources, case delivery).

Tables, not if-chains (the Airbyte ``default_error_mapping`` idea):
:data:`STATUS_ACTIONS` / :data:`CLASS_ACTIONS` map a status to OK / RETRY /
RATE_LIMITED / FAIL, :data:`EXCEPTION_ACTIONS` maps transport errors.
``Retry-After`` is read in both of its forms, and :class:`RateLimiter` spaces
request starts so a client never bursts past the budget it was given.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum

import aiohttp


class Action(Enum):
    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    FAIL = "fail"


# Exact statuses first, then the status class (status // 100).
STATUS_ACTIONS: dict[int, Action] = {
    408: Action.RETRY,  # request timeout
    425: Action.RETRY,  # too early
    429: Action.RATE_LIMITED,
    500: Action.RETRY,
    501: Action.FAIL,  # not implemented: retrying will not help
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
    505: Action.FAIL,
}
CLASS_ACTIONS: dict[int, Action] = {2: Action.OK, 3: Action.FAIL, 4: Action.FAIL, 5: Action.RETRY}
# First matching type wins, so subclasses come before their bases.
EXCEPTION_ACTIONS: tuple[tuple[type[BaseException], Action], ...] = (
    (aiohttp.InvalidURL, Action.FAIL),
    (aiohttp.ClientConnectionError, Action.RETRY),  # refused, reset, server disconnected, timeouts
    (aiohttp.ClientPayloadError, Action.RETRY),  # body cut short
    (asyncio.TimeoutError, Action.RETRY),
    (aiohttp.ClientError, Action.FAIL),
)


def classify_status(status: int) -> Action:
    return STATUS_ACTIONS.get(status) or CLASS_ACTIONS.get(status // 100, Action.FAIL)


def classify_exception(exc: BaseException) -> Action:
    for kind, action in EXCEPTION_ACTIONS:
        if isinstance(exc, kind):
            return action
    return Action.FAIL


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date, RFC 9110 §10.2.3).

    None when the value is missing or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RateLimiter:
    """At most ``per_second`` request starts per second (None = unlimited); spacing, not bursts."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        async with self._lock:
            loop = asyncio.get_running_loop()
            wait = max(0.0, self._next - loop.time())
            if wait:
                await asyncio.sleep(wait)
            self._next = loop.time() + self.interval
            return wait
