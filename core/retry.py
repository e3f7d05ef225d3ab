"""Retrying, one rule for everything that retries (HTTP sources, the store, a failed batch).

Exponential backoff with "equal jitter", and a loop that never gives up on
its own: a caller that retries forever must show it while it does (the
``on_failure`` callback logs, counts and marks health), and stops the loop
by raising from that callback when an error means retrying cannot help.
"""

from __future__ import annotations

import asyncio
import random
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The ceiling doubles each attempt up to ``max_s``; half of it is fixed,
    half random, so many clients that failed together do not retry together.
    """
    ceiling = min(max_s, initial_s * 2 ** (max(attempt, 1) - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def retry_until_done(
    call: Callable[[], Awaitable[T]],
    on_failure: Callable[[Exception, int, float], None],
    *,
    initial_s: float,
    max_s: float,
) -> T:
    """``await call()`` until it succeeds, sleeping a backoff between attempts.

    After each failure ``on_failure(error, attempt, delay)`` runs first: it
    reports the failure, and raises to end the loop (with that exception)
    when retrying is pointless. Cancellation always goes through.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            attempt += 1
            delay = backoff_delay(attempt, initial_s, max_s)
            on_failure(exc, attempt, delay)
            await asyncio.sleep(delay)
